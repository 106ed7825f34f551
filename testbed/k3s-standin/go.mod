module selfhost.test/k3s-standin

go 1.22
