fn main() {
    println!("terraform-provider-selfhost: under construction");
}
