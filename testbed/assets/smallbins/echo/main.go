package main

// echo: answers every HTTP request with the name of the pod it runs in (POD_NAME, else the hostname).
import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// fetch URL (as argv[0] "fetch" or "echo-server fetch URL"): GET with Go's own DNS resolver, body to
// stdout, exit 1 unless 200.  busybox wget cannot resolve names in these images: static glibc wants NSS.
func fetch(url string) {
	c := &http.Client{Timeout: 10 * time.Second}
	r, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer r.Body.Close()
	io.Copy(os.Stdout, r.Body)
	if r.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, r.Status)
		os.Exit(1)
	}
}

func main() {
	if filepath.Base(os.Args[0]) == "fetch" && len(os.Args) == 2 {
		fetch(os.Args[1])
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "fetch" {
		fetch(os.Args[2])
		return
	}
	name := os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	addr := ":8080"
	if a := os.Getenv("LISTEN"); a != "" {
		addr = a
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s %s", r.RemoteAddr, r.Method, r.URL.Path)
		fmt.Fprintf(w, "echo from %s: %s %s\n", name, r.Method, r.URL.Path)
	})
	log.Printf("echo %s listening on %s", name, addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
