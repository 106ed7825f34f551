// A STAND-IN for k3s, NOT k3s: github.com/k3s-io/k3s cannot be had here (the Go module proxy refuses it), so
// `testbed bundle` builds this program, appends the bundle's REAL containerd, runc, CNI plugins, kubelet and
// kubectl to it as a tar payload (a single self-extracting file, like the real k3s), and ships it as
// k3s/k3s.  It emulates what k3s documents and what the provider relies on:
//
//	/usr/local/bin/k3s --version         "k3s version vX.Y.Z+k3s1 (<commit>)" / "go version goX"
//	/etc/rancher/k3s/config.yaml         flags as YAML keys (node-name, node-ip, cluster-cidr, service-cidr,
//	                                     cluster-dns, tls-san, write-kubeconfig-mode, snapshotter, server,
//	                                     token, kubelet-arg, kube-proxy-arg, kube-apiserver-arg,
//	                                     kube-controller-manager-arg, kube-scheduler-arg, secrets-encryption,
//	                                     secrets-encryption-provider)
//	/etc/rancher/k3s/kubelet.conf.d/*.conf  copied to agent/etc/kubelet.conf.d/20-cli-config-dir/ (kubelet --config-dir)
//	/var/lib/rancher/k3s/agent/images/*.tar imported into containerd (namespace k8s.io) at start
//	/var/lib/rancher/k3s/server/node-token  K10<sha256 of the CA PEM>::server:<secret>
//	/etc/rancher/k3s/k3s.yaml            admin kubeconfig, https://127.0.0.1:6443
//	k3s server | k3s agent               Type=notify: READY=1 once the node is registered
//	k3s kubectl | k3s ctr                multi-call
//	k3s secrets-encrypt status|enable|disable|prepare|rotate|reencrypt|rotate-keys  (secrets.go)
//
// Underneath (all real): containerd 1.6 + runc + CNI plugins (bridge/host-local/portmap/flannel) run as child
// processes; the kubelet runs as a child process; etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler run as static pods from the bundle's images; kube-proxy, flannel (vxlan) and CoreDNS are
// deployed from auto-deploy manifests under /var/lib/rancher/k3s/server/manifests (real k3s runs flannel
// and kube-proxy in-process).  No network-policy controller (k3s embeds kube-router's, not buildable here).
// Certificates are made here with crypto/x509 (one CA).  The agent fetches the CA from the ConfigMap
// kube-public/cluster-info, checks its sha256 against the token's K10 hash, and joins by kubelet TLS
// bootstrap with a bootstrap token derived from the token's secret.
//
// Stdlib only: built with `go build` and no module download.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// set by -ldflags -X (testbed/testbed)
var (
	version         = "v0.0.0+k3s1"
	commit          = "00000000"
	pauseImage      = "registry.k8s.io/pause:3.10.2"
	etcdImage       = "registry.k8s.io/etcd:3.6.8-0"
	apiserverImage  = "registry.k8s.io/kube-apiserver:v0.0.0"
	controllerImage = "registry.k8s.io/kube-controller-manager:v0.0.0"
	schedulerImage  = "registry.k8s.io/kube-scheduler:v0.0.0"
	proxyImage      = "registry.k8s.io/kube-proxy:v0.0.0"
	corednsImage    = "registry.k8s.io/coredns/coredns:v1.14.2"
	flannelImage    = "ghcr.io/flannel-io/flannel:v0.28.10"
)

const (
	dataDir      = "/var/lib/rancher/k3s"
	confDir      = "/etc/rancher/k3s"
	runDir       = "/run/k3s"
	serverDir    = dataDir + "/server"
	tlsDir       = serverDir + "/tls"
	credDir      = serverDir + "/cred"
	manifestsDir = serverDir + "/manifests"
	agentDir     = dataDir + "/agent"
	imagesDir    = agentDir + "/images"
	podManDir    = agentDir + "/pod-manifests"
	cniConfDir   = agentDir + "/etc/cni/net.d"
	kubeletDDir  = agentDir + "/etc/kubelet.conf.d"
	ctrdDir      = agentDir + "/containerd"
	ctrdConf     = agentDir + "/etc/containerd/config.toml"
	ctrdSock     = runDir + "/containerd/containerd.sock"
	kubeconfig   = confDir + "/k3s.yaml"
	kubeCache    = dataDir + "/kubectl-cache"
	trailerMagic = "K3SSTANDINPAYLD1"
	trailerLen   = 16 + 16 + 16 + 64
)

func logf(f string, a ...any) { fmt.Fprintf(os.Stderr, "k3s-standin: "+f+"\n", a...) }
func fatal(f string, a ...any) {
	logf("FATAL: "+f, a...)
	killChildren()
	os.Exit(1)
}

func main() {
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "kubectl" || filepath.Base(os.Args[0]) == "ctr" {
		args = append([]string{filepath.Base(os.Args[0])}, args...)
	}
	if len(args) == 0 {
		fmt.Println("usage: k3s [--version] server|agent|kubectl|ctr|secrets-encrypt ...  (a STAND-IN for k3s, see testbed/README.md)")
		os.Exit(1)
	}
	switch args[0] {
	case "--version", "-v", "version":
		fmt.Printf("k3s version %s (%s)\n", version, commit)
		fmt.Printf("go version %s\n", runtime.Version())
	case "kubectl":
		bin := extract()
		env := os.Environ()
		if os.Getenv("KUBECONFIG") == "" && !hasFlag(args[1:], "--kubeconfig") {
			env = append(env, "KUBECONFIG="+kubeconfig)
		}
		// stand-in: kubectl's discovery cache under the data dir, not ~/.kube/cache (real k3s's kubectl uses
		// ~/.kube/cache), so that removing the k3s paths leaves nothing behind
		if os.Getenv("KUBECACHEDIR") == "" {
			env = append(env, "KUBECACHEDIR="+kubeCache)
		}
		execv(bin+"/kubectl", append([]string{"kubectl"}, args[1:]...), env)
	case "ctr":
		bin := extract()
		env := append(os.Environ(), "CONTAINERD_ADDRESS="+ctrdSock)
		if os.Getenv("CONTAINERD_NAMESPACE") == "" {
			env = append(env, "CONTAINERD_NAMESPACE=k8s.io")
		}
		execv(bin+"/ctr", append([]string{"ctr"}, args[1:]...), env)
	case "server", "agent":
		run(args[0], args[1:])
	case "secrets-encrypt":
		secretsEncrypt(args[1:])
	default:
		fmt.Fprintf(os.Stderr, "k3s (stand-in): unsupported command %q\n", args[0])
		os.Exit(1)
	}
}

func hasFlag(args []string, f string) bool {
	for _, a := range args {
		if a == f || strings.HasPrefix(a, f+"=") {
			return true
		}
	}
	return false
}

func execv(path string, argv, env []string) {
	err := syscall.Exec(path, argv, env)
	fmt.Fprintf(os.Stderr, "k3s: exec %s: %v\n", path, err)
	os.Exit(1)
}

// ------------------------------------------------------------------ payload --

// extract unpacks the appended tar (bin/*) into /var/lib/rancher/k3s/data/<sha256>/ once; returns its bin dir.
func extract() string {
	self, err := os.Executable()
	if err != nil {
		fatal("executable: %v", err)
	}
	f, err := os.Open(self)
	if err != nil {
		fatal("open self: %v", err)
	}
	defer f.Close()
	st, _ := f.Stat()
	tr := make([]byte, trailerLen)
	if _, err := f.ReadAt(tr, st.Size()-trailerLen); err != nil || string(tr[:16]) != trailerMagic {
		fatal("%s has no payload (not built by testbed bundle?)", self)
	}
	off, _ := strconv.ParseInt(string(tr[16:32]), 16, 64)
	n, _ := strconv.ParseInt(string(tr[32:48]), 16, 64)
	hash := string(tr[48:])
	dir := filepath.Join(dataDir, "data", hash)
	if _, err := os.Stat(dir + "/.complete"); err == nil {
		return dir + "/bin"
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0755); err != nil {
		fatal("mkdir %s: %v", tmp, err)
	}
	t := tar.NewReader(io.NewSectionReader(f, off, n))
	for {
		h, err := t.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fatal("payload: %v", err)
		}
		p := filepath.Join(tmp, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0755)
			o, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0777)
			if err != nil {
				fatal("payload: %v", err)
			}
			if _, err := io.Copy(o, t); err != nil {
				fatal("payload: %v", err)
			}
			o.Close()
		}
	}
	os.WriteFile(tmp+"/.complete", []byte(hash+"\n"), 0644)
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		fatal("rename: %v", err)
	}
	// as k3s: the data dir of the binary that ran before stays (its containers' shims run from it), and the
	// symlink "current" becomes "previous" when a new binary brings a new payload
	cur := filepath.Join(dataDir, "data", "current")
	if old, err := os.Readlink(cur); err == nil && old != hash {
		os.Remove(filepath.Join(dataDir, "data", "previous"))
		os.Rename(cur, filepath.Join(dataDir, "data", "previous"))
	}
	os.Remove(cur)
	os.Symlink(hash, cur)
	return dir + "/bin"
}

// ------------------------------------------------------------------- config --

type config map[string][]string

func (c config) get(k, def string) string {
	if v := c[k]; len(v) > 0 && v[len(v)-1] != "" {
		return v[len(v)-1]
	}
	return def
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "\"") {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	if len(s) >= 2 && strings.HasPrefix(s, "'") && strings.HasSuffix(s, "'") {
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	}
	return s
}

// loadConfig reads the flat YAML of /etc/rancher/k3s/config.yaml (scalars, "- item" lists, inline [a, b]
// lists), then the command-line flags (--key value / --key=value), which win for scalars and append to lists.
func loadConfig(args []string) config {
	c := config{}
	path := confDir + "/config.yaml"
	for i, a := range args {
		if a == "--config" || a == "-c" {
			if i+1 < len(args) {
				path = args[i+1]
			}
		} else if strings.HasPrefix(a, "--config=") {
			path = strings.TrimPrefix(a, "--config=")
		}
	}
	if b, err := os.ReadFile(path); err == nil {
		key := ""
		for _, line := range strings.Split(string(b), "\n") {
			if i := strings.Index(line, " #"); i >= 0 && !strings.Contains(line[:i], "\"") {
				line = line[:i]
			}
			t := strings.TrimSpace(line)
			if t == "" || strings.HasPrefix(t, "#") || t == "---" {
				continue
			}
			if strings.HasPrefix(t, "- ") || t == "-" {
				if key != "" {
					c[key] = append(c[key], unquote(strings.TrimPrefix(t, "-")))
				}
				continue
			}
			k, v, ok := strings.Cut(t, ":")
			if !ok {
				continue
			}
			key = strings.TrimSpace(unquote(k))
			v = strings.TrimSpace(v)
			if v == "" {
				c[key] = c[key][:0:0]
				continue
			}
			if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
				for _, it := range strings.Split(v[1:len(v)-1], ",") {
					if it = strings.TrimSpace(it); it != "" {
						c[key] = append(c[key], unquote(it))
					}
				}
				continue
			}
			c[key] = append(c[key], unquote(v))
		}
	} else if !os.IsNotExist(err) {
		fatal("read %s: %v", path, err)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") || a == "--config" || strings.HasPrefix(a, "--config=") {
			if a == "--config" {
				i++
			}
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok {
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				v = args[i+1]
				i++
			} else {
				v = "true"
			}
		}
		c[k] = append(c[k], v)
	}
	return c
}

// --------------------------------------------------------------- processes --

type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

var (
	childMu  sync.Mutex
	children = map[string]*child{}
	exited   = make(chan string, 4)
	stopping atomic.Bool
)

func startChild(name string, cmd *exec.Cmd) {
	childMu.Lock()
	defer childMu.Unlock()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		childMu.Unlock()
		fatal("start %s: %v", name, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	children[name] = c
	go func() {
		c.err = cmd.Wait()
		close(c.done)
		exited <- fmt.Sprintf("%s exited: %v", name, c.err)
	}()
	os.WriteFile(filepath.Join(runDir, name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0644)
	logf("started %s (pid %d)", name, cmd.Process.Pid)
}

func killChildren() {
	childMu.Lock()
	defer childMu.Unlock()
	for _, n := range []string{"kubelet", "containerd"} {
		c := children[n]
		if c == nil {
			continue
		}
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
		delete(children, n)
		os.Remove(filepath.Join(runDir, n+".pid"))
	}
}

// killStale kills a containerd/kubelet left by an earlier k3s process (KillMode=process keeps them alive
// when k3s itself was killed), found by their executable under the data dir.  Shims are left alone: the new
// containerd reconnects to them, so the containers keep running, like k3s.
func killStale(bin string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || !strings.HasPrefix(exe, filepath.Join(dataDir, "data")+"/") {
			continue
		}
		b := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
		if b == "containerd" || b == "kubelet" {
			logf("killing stale %s (pid %d)", b, pid)
			syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; i < 50; i++ {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
}

func sh(bin string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "KUBECACHEDIR="+kubeCache)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func notify(state string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		logf("notify: %v", err)
		return
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		logf("notify: %v", err)
	}
}

// -------------------------------------------------------------------- certs --

func writeFile(p string, b []byte, mode os.FileMode) {
	if err := os.MkdirAll(filepath.Dir(p), 0755); err != nil {
		fatal("mkdir: %v", err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		fatal("write %s: %v", p, err)
	}
	os.Chmod(tmp, mode)
	if err := os.Rename(tmp, p); err != nil {
		fatal("rename %s: %v", p, err)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

func loadPair(crt, key string) (*x509.Certificate, any) {
	cb, err := os.ReadFile(crt)
	if err != nil {
		fatal("%v", err)
	}
	kb, err := os.ReadFile(key)
	if err != nil {
		fatal("%v", err)
	}
	cp, _ := pem.Decode(cb)
	kp, _ := pem.Decode(kb)
	c, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		fatal("parse %s: %v", crt, err)
	}
	k, err := x509.ParseECPrivateKey(kp.Bytes)
	if err != nil {
		fatal("parse %s: %v", key, err)
	}
	return c, k
}

func writeKey(p string) *ecdsa.PrivateKey {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := x509.MarshalECPrivateKey(k)
	writeFile(p, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b}), 0600)
	return k
}

func ensureCA() {
	if exists(tlsDir+"/server-ca.crt") && exists(tlsDir+"/server-ca.key") {
		return
	}
	k := writeKey(tlsDir + "/server-ca.key")
	now := time.Now()
	t := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: fmt.Sprintf("k3s-server-ca@%d", now.Unix())},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, t, t, &k.PublicKey, k)
	if err != nil {
		fatal("ca: %v", err)
	}
	writeFile(tlsDir+"/server-ca.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0644)
}

// ensureLeaf makes NAME.crt/NAME.key signed by the CA unless present with the same subject and SANs.
func ensureLeaf(name, cn string, orgs []string, server bool, dns []string, ips []net.IP) {
	crt, key := tlsDir+"/"+name+".crt", tlsDir+"/"+name+".key"
	if exists(crt) && exists(key) {
		if b, err := os.ReadFile(crt); err == nil {
			if p, _ := pem.Decode(b); p != nil {
				if c, err := x509.ParseCertificate(p.Bytes); err == nil && sameSANs(c, dns, ips) && c.Subject.CommonName == cn {
					return
				}
			}
		}
	}
	ca, cak := loadPair(tlsDir+"/server-ca.crt", tlsDir+"/server-ca.key")
	k := writeKey(key)
	now := time.Now()
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if server {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	t := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: eku,
		BasicConstraintsValid: true, DNSNames: dns, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, t, ca, &k.PublicKey, cak)
	if err != nil {
		fatal("cert %s: %v", name, err)
	}
	writeFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0644)
}

func sameSANs(c *x509.Certificate, dns []string, ips []net.IP) bool {
	a := append([]string{}, c.DNSNames...)
	b := append([]string{}, dns...)
	for _, ip := range c.IPAddresses {
		a = append(a, ip.String())
	}
	for _, ip := range ips {
		b = append(b, ip.String())
	}
	sort.Strings(a)
	sort.Strings(b)
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func ensureSAKey() {
	if exists(tlsDir + "/service.key") {
		return
	}
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	writeFile(tlsDir+"/service.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0600)
}

func kubeconfigFiles(server, ca, crt, key string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: %s
    server: %s
  name: local
contexts:
- context:
    cluster: local
    user: user
  name: local
current-context: local
users:
- name: user
  user:
    client-certificate: %s
    client-key: %s
`, ca, server, crt, key)
}

func b64(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		fatal("%v", err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// -------------------------------------------------------------------- token --

// bootstrapToken derives a kubeadm-style bootstrap token [a-z0-9]{6}.[a-z0-9]{16} from the join secret.
func bootstrapToken(secret string) (string, string) {
	id := sha256.Sum256([]byte("k3s-standin-bootstrap-id:" + secret))
	sec := sha256.Sum256([]byte("k3s-standin-bootstrap-secret:" + secret))
	return hex.EncodeToString(id[:])[:6], hex.EncodeToString(sec[:])[:16]
}

// parseToken: K10<ca hash>::<user>:<secret> | <secret>
func parseToken(tok string) (caHash, secret string) {
	if strings.HasPrefix(tok, "K10") {
		if h, rest, ok := strings.Cut(tok[3:], "::"); ok {
			_, s, ok2 := strings.Cut(rest, ":")
			if !ok2 {
				s = rest
			}
			return h, s
		}
	}
	return "", tok
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------- the node --

type node struct {
	role            string
	cfg             config
	bin             string
	name, ip        string
	clusterDNS      string
	snap            string
	serverURL       string // agent: https://server:6443
	apiserverHash   string // the kube-apiserver static pod's hash (staticPod)
	kubeletRestarts int    // checkChildren
	serverHost      string // host kube-proxy / flannel talk to
}

func nthIP(cidr string, n int) string {
	_, nw, err := net.ParseCIDR(cidr)
	if err != nil {
		fatal("bad CIDR %q", cidr)
	}
	ip := nw.IP.To4()
	if ip == nil {
		fatal("IPv4 CIDRs only: %q", cidr)
	}
	v := binary.BigEndian.Uint32(ip) + uint32(n)
	o := make(net.IP, 4)
	binary.BigEndian.PutUint32(o, v)
	return o.String()
}

func defaultIP() string {
	// the address of the interface holding the default route (like k3s)
	c, err := net.Dial("udp", "10.255.255.255:53")
	if err == nil {
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).IP.String()
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}

func run(role string, args []string) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "k3s (stand-in): must run as root")
		os.Exit(1)
	}
	cfg := loadConfig(args)
	h, _ := os.Hostname()
	n := &node{role: role, cfg: cfg}
	n.name = strings.ToLower(cfg.get("node-name", h))
	n.ip = cfg.get("node-ip", defaultIP())
	n.clusterDNS = cfg.get("cluster-dns", nthIP(cfg.get("service-cidr", "10.43.0.0/16"), 10))
	n.snap = cfg.get("snapshotter", "overlayfs")
	logf("%s %s starting as %s: node %s (%s), snapshotter %s", "k3s", version, role, n.name, n.ip, n.snap)
	for _, d := range []string{runDir, dataDir, agentDir, imagesDir, podManDir, cniConfDir, kubeletDDir, ctrdDir} {
		os.MkdirAll(d, 0755)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sigs
		stopping.Store(true)
		logf("%v: stopping kubelet and containerd (containers keep running, like k3s)", s)
		notify("STOPPING=1")
		killChildren()
		os.Exit(0)
	}()
	n.bin = extract()
	killStale(n.bin)
	for p, v := range map[string]string{"/proc/sys/net/ipv4/ip_forward": "1", "/proc/sys/net/bridge/bridge-nf-call-iptables": "1",
		"/proc/sys/net/bridge/bridge-nf-call-ip6tables": "1"} {
		if err := os.WriteFile(p, []byte(v), 0644); err != nil {
			logf("sysctl %s: %v", p, err)
		}
	}
	if role == "server" {
		n.serverURL = "https://127.0.0.1:6443"
		n.serverHost = n.ip
		n.serverSetup()
	} else {
		n.agentSetup()
	}
	n.startContainerd()
	n.importImages()
	n.writeCNI()
	n.startKubelet()
	if role == "server" {
		n.serverRun()
	} else {
		n.agentWait()
	}
	n.refreshKubeProxy()
	n.settle(5 * time.Second)
	notify("READY=1\nSTATUS=running")
	logf("READY")
	// supervise: any child exiting ends k3s (systemd restarts it; the cluster state persists)
	msg := <-exited
	if stopping.Load() {
		select {} // the signal handler is stopping the rest and exits 0
	}
	fatal("%s", msg)
}

// ------------------------------------------------------------------- server --

func (n *node) serverSetup() {
	cfg := n.cfg
	cidr := cfg.get("cluster-cidr", "10.42.0.0/16")
	svc := cfg.get("service-cidr", "10.43.0.0/16")
	for _, d := range []string{tlsDir, credDir, manifestsDir, serverDir + "/db"} {
		os.MkdirAll(d, 0700)
	}
	os.Chmod(serverDir, 0700)
	ensureCA()
	ensureSAKey()
	dns := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost", n.name}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(n.ip), net.ParseIP(nthIP(svc, 1))}
	for _, s := range cfg["tls-san"] {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		} else if s != "" {
			dns = append(dns, s)
		}
	}
	ensureLeaf("serving-kube-apiserver", "kube-apiserver", nil, true, dedup(dns), dedupIP(ips))
	ensureLeaf("client-kube-apiserver", "system:kube-apiserver", []string{"system:masters"}, false, nil, nil)
	ensureLeaf("client-admin", "system:admin", []string{"system:masters"}, false, nil, nil)
	ensureLeaf("client-controller", "system:kube-controller-manager", nil, false, nil, nil)
	ensureLeaf("client-scheduler", "system:kube-scheduler", nil, false, nil, nil)
	ensureLeaf("client-kubelet-"+n.name, "system:node:"+n.name, []string{"system:nodes"}, false, nil, nil)
	ca := tlsDir + "/server-ca.crt"
	local := "https://127.0.0.1:6443"
	writeFile(credDir+"/admin.kubeconfig", []byte(kubeconfigFiles(local, ca, tlsDir+"/client-admin.crt", tlsDir+"/client-admin.key")), 0600)
	writeFile(credDir+"/controller.kubeconfig", []byte(kubeconfigFiles(local, ca, tlsDir+"/client-controller.crt", tlsDir+"/client-controller.key")), 0600)
	writeFile(credDir+"/scheduler.kubeconfig", []byte(kubeconfigFiles(local, ca, tlsDir+"/client-scheduler.crt", tlsDir+"/client-scheduler.key")), 0600)
	writeFile(agentDir+"/kubelet.kubeconfig", []byte(kubeconfigFiles(local, agentDir+"/server-ca.crt",
		tlsDir+"/client-kubelet-"+n.name+".crt", tlsDir+"/client-kubelet-"+n.name+".key")), 0600)
	caPEM, _ := os.ReadFile(ca)
	writeFile(agentDir+"/server-ca.crt", caPEM, 0644)
	writeFile(agentDir+"/client-ca.crt", caPEM, 0644)
	// the join secret: token: from the config, else the one of an earlier start, else a new one
	secret := ""
	if t := cfg.get("token", ""); t != "" {
		_, secret = parseToken(t)
	} else if b, err := os.ReadFile(serverDir + "/token"); err == nil {
		_, secret = parseToken(strings.TrimSpace(string(b)))
	}
	if secret == "" {
		secret = randHex(16)
	}
	sum := sha256.Sum256(caPEM)
	tok := fmt.Sprintf("K10%s::server:%s\n", hex.EncodeToString(sum[:]), secret)
	writeFile(serverDir+"/token", []byte(tok), 0600)
	writeFile(serverDir+"/node-token", []byte(tok), 0600)
	writeFile(serverDir+"/agent-token", []byte(tok), 0600)
	if encryptionEnabled(cfg) {
		ensureEncryptionConfig(encryptionProvider(cfg))
	} else if exists(encryptionConfig) {
		// as k3s: without the flag the kube-apiserver gets no encryption configuration, and Secrets written
		// encrypted cannot be read (`k3s secrets-encrypt disable` first rewrites them in plain)
		logf("WARNING: %s exists but secrets-encryption is off: the kube-apiserver runs without it", encryptionConfig)
	}
	n.staticPods(cidr, svc)
	n.autoManifests(cidr, secret, caPEM)
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	var o []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			o = append(o, x)
		}
	}
	return o
}

func dedupIP(s []net.IP) []net.IP {
	seen := map[string]bool{}
	var o []net.IP
	for _, x := range s {
		if x != nil && !seen[x.String()] {
			seen[x.String()] = true
			o = append(o, x)
		}
	}
	return o
}

// componentArgs is k3s's config.GetArgs: the component's defaults, then each `name=value` of the user's
// kube-*-arg list (a user argument replaces the default of the same name, as in k3s, instead of repeating the
// flag), as --name=value sorted by name.
func componentArgs(defaults map[string]string, extra []string) []string {
	m := map[string]string{}
	for k, v := range defaults {
		m[k] = v
	}
	for _, a := range extra {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, "--"+k+"="+m[k])
	}
	return out
}

// hostPaths returns what a component started with `args` must see of the host: real k3s runs the control plane
// in-process, so every host path an argument names is visible; a static pod needs it mounted.  dirs: the
// directories to mount (the named directory, or the parent of a named file), beyond the server dir and
// /etc/rancher/k3s; files: the files the component reads at start (flags ending in -file or -config), whose
// content decides whether a k3s restart must restart the component (k3s restarts it every time).
func hostPaths(args []string) (dirs, files []string) {
	seen := map[string]bool{}
	for _, a := range args {
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok {
			continue
		}
		for _, p := range strings.Split(v, ",") {
			if !strings.HasPrefix(p, "/") {
				continue
			}
			p = filepath.Clean(p)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && (strings.HasSuffix(k, "-file") || strings.HasSuffix(k, "-config")) {
				files = append(files, p)
			}
			d := filepath.Dir(p)
			if st, err := os.Stat(p); (err == nil && st.IsDir()) || strings.HasSuffix(k, "-dir") {
				d = p
			}
			if d == "/" || seen[d] || d == serverDir || strings.HasPrefix(d, serverDir+"/") || d == confDir || strings.HasPrefix(d, confDir+"/") {
				continue
			}
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	return dirs, files
}

// configHash: sha256 over the command and the content of the files it reads at start.
func configHash(cmd, files []string) string {
	h := sha256.New()
	for _, c := range cmd {
		h.Write([]byte(c + "\x00"))
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		h.Write([]byte(f + "\x00"))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

const hashEnv = "K3S_STANDIN_CONFIG_HASH"

// staticPod renders a control-plane static pod: the server dir and /etc/rancher/k3s (read-write, like the host
// for an in-process k3s component) plus the host directories its arguments name; the environment carries the
// hash of its image, command and input files (a new hash = a new manifest = the kubelet restarts the pod).  The
// image is in the hash because a new k3s binary brings new component images with the same command line: after
// `systemctl restart k3s` with a new binary, READY must wait for the new release's kube-apiserver (real k3s runs
// it in-process, so its API server is always the binary's own release), not the old pod still answering.
func staticPod(name, image string, cmd []string) (string, string) {
	dirs, files := hostPaths(cmd)
	hash := configHash(append([]string{image}, cmd...), files)
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: kube-system
  labels: {component: %s, tier: control-plane}
spec:
  hostNetwork: true
  containers:
  - name: %s
    image: %s
    imagePullPolicy: Never
    env:
    - {name: %s, value: "%s"}
    command:
`, name, name, name, image, hashEnv, hash)
	for _, c := range cmd {
		q, _ := json.Marshal(c)
		fmt.Fprintf(&b, "    - %s\n", q)
	}
	b.WriteString(`    volumeMounts:
    - {name: server, mountPath: /var/lib/rancher/k3s/server}
    - {name: etc-k3s, mountPath: /etc/rancher/k3s}
`)
	for i, d := range dirs {
		q, _ := json.Marshal(d)
		fmt.Fprintf(&b, "    - {name: host-%d, mountPath: %s}\n", i, q)
	}
	b.WriteString(`  volumes:
  - name: server
    hostPath: {path: /var/lib/rancher/k3s/server, type: Directory}
  - name: etc-k3s
    hostPath: {path: /etc/rancher/k3s, type: DirectoryOrCreate}
`)
	for i, d := range dirs {
		q, _ := json.Marshal(d)
		fmt.Fprintf(&b, "  - name: host-%d\n    hostPath: {path: %s, type: DirectoryOrCreate}\n", i, q)
	}
	return b.String(), hash
}

func (n *node) staticPods(cidr, svc string) {
	t := tlsDir
	apiserver := map[string]string{
		"advertise-address": n.ip, "allow-privileged": "true", "anonymous-auth": "true",
		"authorization-mode": "Node,RBAC", "bind-address": "0.0.0.0", "secure-port": "6443",
		"client-ca-file": t + "/server-ca.crt", "enable-admission-plugins": "NodeRestriction",
		"enable-bootstrap-token-auth": "true", "etcd-servers": "http://127.0.0.1:2379",
		"kubelet-client-certificate": t + "/client-kube-apiserver.crt", "kubelet-client-key": t + "/client-kube-apiserver.key",
		"kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname", "profiling": "false",
		"service-account-issuer":   "https://kubernetes.default.svc.cluster.local",
		"service-account-key-file": t + "/service.key", "service-account-signing-key-file": t + "/service.key",
		"service-cluster-ip-range": svc, "tls-cert-file": t + "/serving-kube-apiserver.crt",
		"tls-private-key-file": t + "/serving-kube-apiserver.key",
	}
	if encryptionEnabled(n.cfg) {
		// what k3s passes with --secrets-encryption (automatic reload: rotate-keys without a restart)
		apiserver["encryption-provider-config"] = encryptionConfig
		apiserver["encryption-provider-config-automatic-reload"] = "true"
	}
	controller := map[string]string{
		"kubeconfig": credDir + "/controller.kubeconfig", "authentication-kubeconfig": credDir + "/controller.kubeconfig",
		"authorization-kubeconfig": credDir + "/controller.kubeconfig", "bind-address": "127.0.0.1",
		"allocate-node-cidrs": "true", "cluster-cidr": cidr, "service-cluster-ip-range": svc,
		"cluster-signing-cert-file": t + "/server-ca.crt", "cluster-signing-key-file": t + "/server-ca.key",
		"controllers": "*,bootstrapsigner,tokencleaner", "root-ca-file": t + "/server-ca.crt",
		"service-account-private-key-file": t + "/service.key", "use-service-account-credentials": "true",
		"leader-elect": "false", "profiling": "false",
	}
	scheduler := map[string]string{
		"kubeconfig": credDir + "/scheduler.kubeconfig", "authentication-kubeconfig": credDir + "/scheduler.kubeconfig",
		"authorization-kubeconfig": credDir + "/scheduler.kubeconfig", "bind-address": "127.0.0.1",
		"leader-elect": "false", "profiling": "false",
	}
	etcd, _ := staticPod("etcd", etcdImage, []string{"/usr/local/bin/etcd", "--name=" + n.name,
		"--data-dir=" + serverDir + "/db/etcd", "--listen-client-urls=http://127.0.0.1:2379",
		"--advertise-client-urls=http://127.0.0.1:2379", "--listen-peer-urls=http://127.0.0.1:2380",
		"--initial-advertise-peer-urls=http://127.0.0.1:2380", "--initial-cluster=" + n.name + "=http://127.0.0.1:2380",
		"--listen-metrics-urls=http://127.0.0.1:2381", "--snapshot-count=10000"})
	api, hash := staticPod("kube-apiserver", apiserverImage,
		append([]string{"/usr/local/bin/kube-apiserver"}, componentArgs(apiserver, n.cfg["kube-apiserver-arg"])...))
	n.apiserverHash = hash
	cm, _ := staticPod("kube-controller-manager", controllerImage,
		append([]string{"/usr/local/bin/kube-controller-manager"}, componentArgs(controller, n.cfg["kube-controller-manager-arg"])...))
	sched, _ := staticPod("kube-scheduler", schedulerImage,
		append([]string{"/usr/local/bin/kube-scheduler"}, componentArgs(scheduler, n.cfg["kube-scheduler-arg"])...))
	pods := map[string]string{"etcd": etcd, "kube-apiserver": api, "kube-controller-manager": cm, "kube-scheduler": sched}
	for name, y := range pods {
		p := podManDir + "/" + name + ".yaml"
		if old, err := os.ReadFile(p); err == nil && string(old) == y {
			continue
		}
		writeFile(p, []byte(y), 0600)
		logf("static pod %s written", name)
	}
}

// waitAPIServer waits until every kube-apiserver process on this host runs with the expected command and input
// files (the environment hash of its static pod: after a restart with a changed config the kubelet replaces the
// old pod, which may still answer for a while) and answers /readyz.
func (n *node) waitAPIServer(kubectl func(...string) (string, error), deadline time.Duration) {
	t0 := time.Now()
	for {
		procs, current := 0, 0
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			cl, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil || !bytes.HasPrefix(cl, []byte("/usr/local/bin/kube-apiserver\x00")) {
				continue
			}
			procs++
			env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
			if bytes.Contains(append([]byte{0}, env...), []byte("\x00"+hashEnv+"="+n.apiserverHash+"\x00")) {
				current++
			}
		}
		if procs > 0 && procs == current {
			if out, err := kubectl("get", "--raw", "/readyz"); err == nil && strings.TrimSpace(out) == "ok" {
				return
			}
		}
		if time.Since(t0) > deadline {
			fatal("kube-apiserver with the current configuration not ready after %v (%d running, %d current)", deadline, procs, current)
		}
		n.checkChildren()
		time.Sleep(time.Second)
	}
}

// checkChildren, while starting: a kubelet that exits early (after a restart containerd's CRI can answer "server
// is not initialized yet" for a moment, and the kubelet gives up at once) is started again, up to 5 times; any
// other exit ends k3s (systemd restarts it).
func (n *node) checkChildren() {
	select {
	case msg := <-exited:
		if strings.HasPrefix(msg, "kubelet exited") && n.kubeletRestarts < 5 {
			n.kubeletRestarts++
			logf("%s: starting it again (%d)", msg, n.kubeletRestarts)
			time.Sleep(2 * time.Second)
			n.startKubelet()
			return
		}
		fatal("%s", msg)
	default:
	}
}

func (n *node) autoManifests(cidr, secret string, caPEM []byte) {
	id, sec := bootstrapToken(secret)
	kcfg := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: %s\n    server: https://%s:6443\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nusers: null\n",
		base64.StdEncoding.EncodeToString(caPEM), n.ip)
	crb := func(name, role string, subj map[string]any) map[string]any {
		return map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
			"metadata": map[string]any{"name": name},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
			"subjects": []any{subj}}
	}
	group := func(g string) map[string]any {
		return map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}
	}
	bootstrap := map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{
		map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
			"metadata": map[string]any{"name": "bootstrap-token-" + id, "namespace": "kube-system"},
			"stringData": map[string]any{"token-id": id, "token-secret": sec, "usage-bootstrap-authentication": "true",
				"usage-bootstrap-signing": "true", "auth-extra-groups": "system:bootstrappers:k3s:default-node-token",
				"description": "k3s stand-in: agent join token (derived from the node-token secret)"}},
		crb("k3s:node-bootstrapper", "system:node-bootstrapper", group("system:bootstrappers")),
		crb("k3s:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", group("system:bootstrappers")),
		crb("k3s:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", group("system:nodes")),
		map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "cluster-info", "namespace": "kube-public"},
			"data": map[string]any{"kubeconfig": kcfg, "ca.crt": string(caPEM)}},
		map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
			"metadata": map[string]any{"name": "k3s:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
			"rules":    []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"configmaps"}, "resourceNames": []any{"cluster-info"}, "verbs": []any{"get"}}}},
		map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
			"metadata": map[string]any{"name": "k3s:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "k3s:bootstrap-signer-clusterinfo"},
			"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous"}}},
	}}
	bj, _ := json.MarshalIndent(bootstrap, "", " ")
	writeFile(manifestsDir+"/00-bootstrap.json", bj, 0600)
	proxyArgs := ""
	for _, a := range n.cfg["kube-proxy-arg"] {
		q, _ := json.Marshal("--" + strings.TrimPrefix(a, "--"))
		proxyArgs += ", " + string(q)
	}
	writeFile(manifestsDir+"/coredns.yaml", []byte(fmt.Sprintf(corednsYAML, corednsImage, n.clusterDNS)), 0600)
	writeFile(manifestsDir+"/kube-proxy.yaml", []byte(fmt.Sprintf(kubeProxyYAML, cidr, proxyImage, proxyArgs, n.ip)), 0600)
	writeFile(manifestsDir+"/flannel.yaml", []byte(fmt.Sprintf(flannelYAML, cidr, flannelImage, n.ip)), 0600)
}

func (n *node) serverRun() {
	admin := credDir + "/admin.kubeconfig"
	kubectl := func(args ...string) (string, error) {
		return sh(n.bin, n.bin+"/kubectl", append([]string{"--kubeconfig", admin, "--request-timeout=20s"}, args...)...)
	}
	// API server answering (the kubelet starts it as a static pod), with the current configuration
	t0 := time.Now()
	n.waitAPIServer(kubectl, 10*time.Minute)
	logf("kube-apiserver ready after %.0fs", time.Since(t0).Seconds())
	// the k3s deploy controller, once: apply everything in server/manifests
	for i := 0; ; i++ {
		out, err := kubectl("apply", "-f", manifestsDir)
		if err == nil {
			logf("applied %s", manifestsDir)
			break
		}
		if i > 120 {
			fatal("apply %s: %v\n%s", manifestsDir, err, out)
		}
		time.Sleep(time.Second)
	}
	// k3s.yaml: the admin kubeconfig with embedded credentials
	mode := os.FileMode(0600)
	if m := n.cfg.get("write-kubeconfig-mode", ""); m != "" {
		if v, err := strconv.ParseUint(m, 8, 32); err == nil {
			mode = os.FileMode(v)
		}
	}
	kc := fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: %s
    client-key-data: %s
`, b64(tlsDir+"/server-ca.crt"), b64(tlsDir+"/client-admin.crt"), b64(tlsDir+"/client-admin.key"))
	out := n.cfg.get("write-kubeconfig", kubeconfig)
	writeFile(out, []byte(kc), mode)
	// node registered
	for {
		if _, err := kubectl("get", "node", n.name); err == nil {
			break
		}
		if time.Since(t0) > 15*time.Minute {
			fatal("node %s not registered", n.name)
		}
		n.checkChildren()
		time.Sleep(time.Second)
	}
	kubectl("label", "node", n.name, "--overwrite", "node-role.kubernetes.io/control-plane=true", "node-role.kubernetes.io/master=true")
	if encryptionEnabled(n.cfg) {
		// k3s's BootstrapEncryptionHashAnnotation: the rotation stage and config hash, read by secrets-encrypt
		if b, err := os.ReadFile(encryptionState); err == nil {
			if out, err := kubectl("annotate", "node", n.name, "--overwrite", encryptionAnn+"="+strings.TrimSpace(string(b))); err != nil {
				fatal("annotate node %s: %v: %s", n.name, err, out)
			}
		}
	}
	logf("node %s registered after %.0fs", n.name, time.Since(t0).Seconds())
}

// refreshKubeProxy emulates k3s's in-process kube-proxy across a binary upgrade.  k3s runs kube-proxy inside each
// node's k3s process: a node's kube-proxy is the release of that node's binary and changes only when that node
// restarts (an agent not yet upgraded keeps its old kube-proxy while the server already runs the new release).
// The stand-in's kube-proxy DaemonSet updates OnDelete, and every start of k3s deletes the kube-proxy pod of its own
// node when it runs another image than this binary's (the server: also when its command differs from the
// DaemonSet's, after a change of kube-proxy-arg); the DaemonSet controller recreates it from the current template.
// The agent lists and deletes with its node credentials (the Node authorizer and NodeRestriction allow a node
// its own pods).
func (n *node) refreshKubeProxy() {
	kc := credDir + "/admin.kubeconfig"
	if n.role == "agent" {
		kc = agentDir + "/kubelet.kubeconfig"
	}
	kubectl := func(args ...string) (string, error) {
		return sh(n.bin, n.bin+"/kubectl", append([]string{"--kubeconfig", kc, "--request-timeout=20s", "-n", "kube-system"}, args...)...)
	}
	out, err := kubectl("get", "pods", "-l", "k8s-app=kube-proxy", "--field-selector", "spec.nodeName="+n.name, "-o",
		`jsonpath={range .items[*]}{.metadata.name}{"\t"}{.spec.containers[0].image}{"\t"}{.spec.containers[0].command}{"\n"}{end}`)
	if err != nil {
		logf("WARNING: the kube-proxy pods of %s: %v: %s", n.name, err, strings.TrimSpace(out))
		return
	}
	tmpl := ""
	if n.role == "server" {
		tmpl, _ = kubectl("get", "daemonset", "kube-proxy", "-o", "jsonpath={.spec.template.spec.containers[0].command}")
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) < 3 || (f[1] == proxyImage && (tmpl == "" || f[2] == strings.TrimSpace(tmpl))) {
			continue
		}
		if o, err := kubectl("delete", "pod", f[0], "--wait=false"); err != nil {
			logf("WARNING: delete the outdated kube-proxy pod %s: %v: %s", f[0], err, strings.TrimSpace(o))
			continue
		}
		logf("kube-proxy pod %s ran %s: deleted, the DaemonSet recreates it with %s (k3s's in-process kube-proxy is its binary's)", f[0], f[1], proxyImage)
	}
}

// -------------------------------------------------------------------- agent --

func (n *node) agentSetup() {
	srv := n.cfg.get("server", "")
	tok := n.cfg.get("token", "")
	if tok == "" {
		if f := n.cfg.get("token-file", ""); f != "" {
			b, _ := os.ReadFile(f)
			tok = strings.TrimSpace(string(b))
		}
	}
	if srv == "" || tok == "" {
		fatal("agent needs server and token")
	}
	n.serverURL = strings.TrimSuffix(srv, "/")
	u := strings.TrimPrefix(strings.TrimPrefix(n.serverURL, "https://"), "http://")
	host, _, err := net.SplitHostPort(u)
	if err != nil {
		host = u
	}
	n.serverHost = host
	caHash, secret := parseToken(tok)
	// the CA from the server, trusted only if it hashes to the token's K10 hash
	var caPEM []byte
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	t0 := time.Now()
	for {
		caPEM, err = fetchCA(insecure, n.serverURL)
		if err == nil {
			break
		}
		if time.Since(t0) > 10*time.Minute {
			fatal("cannot get the cluster CA from %s: %v", n.serverURL, err)
		}
		logf("waiting for the server: %v", err)
		time.Sleep(3 * time.Second)
	}
	sum := sha256.Sum256(caPEM)
	if caHash != "" && hex.EncodeToString(sum[:]) != strings.ToLower(caHash) {
		fatal("the server's CA (sha256 %x) does not match the token's hash %s: refusing to join", sum, caHash)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		fatal("bad CA from server")
	}
	// the server's certificate must verify against that CA
	verified := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := verified.Get(n.serverURL + "/version")
	if err != nil {
		fatal("server TLS does not verify with the token's CA: %v", err)
	}
	resp.Body.Close()
	writeFile(agentDir+"/server-ca.crt", caPEM, 0644)
	writeFile(agentDir+"/client-ca.crt", caPEM, 0644)
	id, sec := bootstrapToken(secret)
	writeFile(agentDir+"/bootstrap.kubeconfig", []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: %s
    server: %s
  name: default
contexts:
- context:
    cluster: default
    user: bootstrap
  name: default
current-context: default
users:
- name: bootstrap
  user:
    token: %s.%s
`, agentDir+"/server-ca.crt", n.serverURL, id, sec)), 0600)
	logf("server CA verified against the token hash; joining %s", n.serverURL)
}

func fetchCA(c *http.Client, server string) ([]byte, error) {
	resp, err := c.Get(server + "/api/v1/namespaces/kube-public/configmaps/cluster-info")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("cluster-info: HTTP %d", resp.StatusCode)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(body, &cm); err != nil {
		return nil, err
	}
	if cm.Data["ca.crt"] == "" {
		return nil, errors.New("cluster-info has no ca.crt")
	}
	return []byte(cm.Data["ca.crt"]), nil
}

func (n *node) agentWait() {
	t0 := time.Now()
	kc := agentDir + "/kubelet.kubeconfig"
	for {
		if exists(kc) {
			if _, err := sh(n.bin, n.bin+"/kubectl", "--kubeconfig", kc, "--request-timeout=10s", "get", "node", n.name); err == nil {
				break
			}
		}
		if time.Since(t0) > 15*time.Minute {
			fatal("node %s not registered", n.name)
		}
		n.checkChildren()
		time.Sleep(time.Second)
	}
	logf("node %s registered after %.0fs", n.name, time.Since(t0).Seconds())
}

// settle keeps watching the children for d before READY. On a restart the node is registered already, so
// agentWait returns at once, while the new kubelet may still give up on containerd's CRI ("server is not
// initialized yet") a few milliseconds after its start: seen in CI as READY, then "FATAL: kubelet exited" and
// the unit back in "activating" right after `systemctl restart` had returned. checkChildren starts such an
// early kubelet again.
func (n *node) settle(d time.Duration) {
	for t0 := time.Now(); time.Since(t0) < d; {
		n.checkChildren()
		time.Sleep(250 * time.Millisecond)
	}
}

// --------------------------------------------------------------- containerd --

func (n *node) startContainerd() {
	os.MkdirAll(filepath.Dir(ctrdConf), 0755)
	os.MkdirAll(runDir+"/containerd", 0711)
	// The stand-in always sets restrict_oom_score_adj: in the test bed's nspawn hosts no process may lower an
	// oom_score_adj (no CAP_SYS_RESOURCE) and runc fails on the sandbox otherwise; real k3s does not need it.
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "10010"
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = %q
    disable_snapshot_annotations = true
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = %q
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, ctrdDir, runDir+"/containerd", ctrdSock, ctrdDir+"/opt", pauseImage, n.snap, n.bin+"/runc", runDir+"/containerd/runc", n.bin, cniConfDir)
	writeFile(ctrdConf, []byte(conf), 0644)
	lf, err := os.OpenFile(ctrdDir+"/containerd.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0600)
	if err != nil {
		fatal("%v", err)
	}
	cmd := exec.Command(n.bin+"/containerd", "--config", ctrdConf)
	cmd.Env = append(os.Environ(), "PATH="+n.bin+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = lf, lf
	startChild("containerd", cmd)
	for i := 0; ; i++ {
		if _, err := sh(n.bin, n.bin+"/ctr", "--address", ctrdSock, "version"); err == nil {
			break
		}
		if i > 300 {
			fatal("containerd did not come up (see %s/containerd.log)", ctrdDir)
		}
		time.Sleep(200 * time.Millisecond)
	}
	logf("containerd up")
}

// importImages imports every *.tar in agent/images (k3s's air-gap directory) into namespace k8s.io; what was
// imported (name, size, mtime, snapshotter) is remembered so that a restart does not import it again.
func (n *node) importImages() {
	files, _ := filepath.Glob(imagesDir + "/*.tar")
	rec := agentDir + "/images-imported.txt"
	done := map[string]bool{}
	if b, err := os.ReadFile(rec); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			done[l] = true
		}
	}
	t0 := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	var failed []string
	var imported []string
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			continue
		}
		key := fmt.Sprintf("%s %d %d %s", filepath.Base(f), st.Size(), st.ModTime().Unix(), n.snap)
		if done[key] {
			continue
		}
		wg.Add(1)
		go func(f, key string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out, err := sh(n.bin, n.bin+"/ctr", "--address", ctrdSock, "-n", "k8s.io", "images", "import", "--snapshotter", n.snap, f)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v: %s", f, err, strings.TrimSpace(out)))
			} else {
				imported = append(imported, key)
			}
		}(f, key)
	}
	wg.Wait()
	if len(failed) > 0 {
		fatal("image import failed: %s", strings.Join(failed, "; "))
	}
	if len(imported) > 0 {
		fh, _ := os.OpenFile(rec, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0644)
		for _, k := range imported {
			fmt.Fprintln(fh, k)
		}
		fh.Close()
	}
	logf("imported %d image archive(s) from %s in %.0fs", len(imported), imagesDir, time.Since(t0).Seconds())
}

func (n *node) writeCNI() {
	writeFile(cniConfDir+"/10-flannel.conflist", []byte(`{
  "name": "cbr0",
  "cniVersion": "0.3.1",
  "plugins": [
    {"type": "flannel", "delegate": {"hairpinMode": true, "forceAddress": true, "isDefaultGateway": true}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`), 0644)
}

// ------------------------------------------------------------------ kubelet --

var cgroupRootRE = regexp.MustCompile(`"?cgroupRoot"?\s*:\s*"?([^"\s,}]+)"?`)

func (n *node) startKubelet() {
	// kubelet.conf.d: our defaults, then the user's drop-ins (k3s v1.32+ layout)
	os.RemoveAll(kubeletDDir)
	os.MkdirAll(kubeletDDir+"/20-cli-config-dir", 0755)
	writeFile(kubeletDDir+"/00-k3s-defaults.conf", []byte(fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true, cacheTTL: 2m0s}
  x509: {clientCAFile: %s}
authorization:
  mode: Webhook
  webhook: {cacheAuthorizedTTL: 5m0s, cacheUnauthorizedTTL: 30s}
cgroupDriver: cgroupfs
clusterDomain: cluster.local
clusterDNS: [%s]
containerRuntimeEndpoint: unix://%s
failSwapOn: false
healthzBindAddress: 127.0.0.1
staticPodPath: %s
serializeImagePulls: false
rotateCertificates: true
volumePluginDir: /var/lib/kubelet/volumeplugins
`, agentDir+"/client-ca.crt", n.clusterDNS, ctrdSock, podManDir)), 0644)
	cgroupRoots := []string{}
	drop, _ := filepath.Glob(confDir + "/kubelet.conf.d/*.conf")
	sort.Strings(drop)
	for _, f := range drop {
		b, err := os.ReadFile(f)
		if err != nil {
			fatal("%v", err)
		}
		writeFile(kubeletDDir+"/20-cli-config-dir/"+filepath.Base(f), b, 0644)
		for _, m := range cgroupRootRE.FindAllStringSubmatch(string(b), -1) {
			cgroupRoots = append(cgroupRoots, m[1])
		}
	}
	// With the cgroupfs driver the kubelet needs its cgroupRoot to exist in every hierarchy and does not make
	// it (the provider's kubeadm path runs a script for it before the kubelet): made here, the same way.
	for _, r := range cgroupRoots {
		if r != "/" {
			makeCgroup(r)
		}
	}
	args := []string{
		"--config-dir=" + kubeletDDir,
		"--kubeconfig=" + agentDir + "/kubelet.kubeconfig",
		"--hostname-override=" + n.name,
		"--node-ip=" + n.ip,
	}
	if n.role == "agent" {
		args = append(args, "--bootstrap-kubeconfig="+agentDir+"/bootstrap.kubeconfig")
	}
	for _, a := range n.cfg["kubelet-arg"] {
		args = append(args, "--"+strings.TrimPrefix(a, "--"))
	}
	cmd := exec.Command(n.bin+"/kubelet", args...)
	cmd.Env = append(os.Environ(), "PATH="+n.bin+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	startChild("kubelet", cmd)
}

func makeCgroup(root string) {
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hs {
		if st, err := os.Stat(h); err != nil || !st.IsDir() || !exists(h+"/cgroup.procs") || exists(h+"/cgroup.controllers") {
			continue // v1 hierarchies only (a v2 root has cgroup.controllers)
		}
		parent := strings.TrimSuffix(h, "/")
		for _, part := range strings.Split(strings.Trim(root, "/"), "/") {
			d := parent + "/" + part
			if !exists(d) {
				if err := os.Mkdir(d, 0755); err != nil {
					logf("cgroup %s: %v", d, err)
					break
				}
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					if b, err := os.ReadFile(parent + "/" + f); err == nil {
						os.WriteFile(d+"/"+f, bytes.TrimSpace(b), 0644)
					}
				}
				logf("made cgroup %s", d)
			}
			parent = d
		}
	}
}

// --------------------------------------------------------------- manifests --

const corednsYAML = `# k3s stand-in: CoreDNS (k3s ships it as server/manifests/coredns.yaml too)
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health {
          lameduck 5s
        }
        ready
        kubernetes cluster.local in-addr.arpa ip6.arpa {
          pods insecure
          fallthrough in-addr.arpa ip6.arpa
        }
        prometheus :9153
        forward . /etc/resolv.conf
        cache 30
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector:
    matchLabels: {k8s-app: kube-dns}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
    spec:
      priorityClassName: system-cluster-critical
      serviceAccountName: coredns
      dnsPolicy: Default
      tolerations:
      - {key: CriticalAddonsOnly, operator: Exists}
      - {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}
      containers:
      - name: coredns
        image: %s
        imagePullPolicy: IfNotPresent
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {containerPort: 53, name: dns, protocol: UDP}
        - {containerPort: 53, name: dns-tcp, protocol: TCP}
        - {containerPort: 9153, name: metrics, protocol: TCP}
        securityContext:
          capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
          readOnlyRootFilesystem: true
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          initialDelaySeconds: 60
          periodSeconds: 10
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
        volumeMounts:
        - {name: config-volume, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config-volume
        configMap:
          name: coredns
          items: [{key: Corefile, path: Corefile}]
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: %s
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: metrics, port: 9153, protocol: TCP}
`

// kube-proxy: real k3s runs it in-process; the stand-in runs the bundle's image as a DaemonSet.
// conntrack 0 = leave the kernel's conntrack sysctls alone (read-only in the test bed's hosts).
const kubeProxyYAML = `# k3s stand-in: kube-proxy (real k3s runs it in-process)
apiVersion: v1
kind: ServiceAccount
metadata: {name: kube-proxy, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "k3s:node-proxier"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node-proxier"}
subjects:
- {kind: ServiceAccount, name: kube-proxy, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kube-proxy, namespace: kube-system}
data:
  config.conf: |
    apiVersion: kubeproxy.config.k8s.io/v1alpha1
    kind: KubeProxyConfiguration
    clusterCIDR: %s
    mode: iptables
    conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-proxy
  namespace: kube-system
  labels: {k8s-app: kube-proxy}
spec:
  # each node's k3s replaces its own pod when it starts (refreshKubeProxy): like k3s's in-process kube-proxy, a
  # node runs the kube-proxy of its own binary's release until that node is upgraded
  updateStrategy: {type: OnDelete}
  selector:
    matchLabels: {k8s-app: kube-proxy}
  template:
    metadata:
      labels: {k8s-app: kube-proxy}
    spec:
      hostNetwork: true
      priorityClassName: system-node-critical
      serviceAccountName: kube-proxy
      tolerations:
      - {operator: Exists}
      containers:
      - name: kube-proxy
        image: %s
        imagePullPolicy: IfNotPresent
        command: [/usr/local/bin/kube-proxy, --config=/var/lib/kube-proxy/config.conf, "--hostname-override=$(NODE_NAME)"%s]
        env:
        - name: NODE_NAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
        - {name: KUBERNETES_SERVICE_HOST, value: "%s"}
        - {name: KUBERNETES_SERVICE_PORT, value: "6443"}
        securityContext: {privileged: true}
        volumeMounts:
        - {name: kube-proxy, mountPath: /var/lib/kube-proxy}
      volumes:
      - name: kube-proxy
        configMap: {name: kube-proxy}
`

// flannel: real k3s runs it in-process and writes the CNI config itself; the stand-in writes the CNI config
// (agent/etc/cni/net.d/10-flannel.conflist, plugins in data/<hash>/bin) and runs flanneld as a DaemonSet.
const flannelYAML = `# k3s stand-in: flannel (vxlan; real k3s runs it in-process)
apiVersion: v1
kind: ServiceAccount
metadata: {name: flannel, namespace: kube-system}
---
kind: ClusterRole
apiVersion: rbac.authorization.k8s.io/v1
metadata: {name: "k3s:flannel"}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get]
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [nodes/status]
  verbs: [patch]
---
kind: ClusterRoleBinding
apiVersion: rbac.authorization.k8s.io/v1
metadata: {name: "k3s:flannel"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "k3s:flannel"}
subjects:
- {kind: ServiceAccount, name: flannel, namespace: kube-system}
---
kind: ConfigMap
apiVersion: v1
metadata: {name: flannel-cfg, namespace: kube-system}
data:
  net-conf.json: |
    {"Network": "%s", "Backend": {"Type": "vxlan"}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: flannel
  namespace: kube-system
  labels: {k8s-app: flannel}
spec:
  selector:
    matchLabels: {k8s-app: flannel}
  template:
    metadata:
      labels: {k8s-app: flannel}
    spec:
      hostNetwork: true
      priorityClassName: system-node-critical
      serviceAccountName: flannel
      tolerations:
      - {operator: Exists}
      containers:
      - name: flannel
        image: %s
        imagePullPolicy: IfNotPresent
        command: [/opt/bin/flanneld]
        # the interface holding the node's address (k3s uses node-ip's interface too)
        args: [--ip-masq, --kube-subnet-mgr, "--iface=$(HOST_IP)"]
        securityContext:
          privileged: false
          capabilities: {add: [NET_ADMIN, NET_RAW]}
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: POD_NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        - name: HOST_IP
          valueFrom: {fieldRef: {fieldPath: status.hostIP}}
        - {name: KUBERNETES_SERVICE_HOST, value: "%s"}
        - {name: KUBERNETES_SERVICE_PORT, value: "6443"}
        volumeMounts:
        - {name: run, mountPath: /run/flannel}
        - {name: flannel-cfg, mountPath: /etc/kube-flannel/}
      volumes:
      - name: run
        hostPath: {path: /run/flannel, type: DirectoryOrCreate}
      - name: flannel-cfg
        configMap: {name: flannel-cfg}
`
