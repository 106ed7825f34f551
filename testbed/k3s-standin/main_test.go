package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// the hardening guide's config.yaml (docs.k3s.io/security/hardening-guide), as the provider writes it
const hardenedConfig = `node-name: "srv1"
secrets-encryption: true
secrets-encryption-provider: "secretbox"
kube-apiserver-arg:
  - 'admission-control-config-file=/var/lib/rancher/k3s/server/psa.yaml'
  - 'audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log'
  - 'audit-policy-file=/var/lib/rancher/k3s/server/audit.yaml'
  - 'audit-log-maxage=30'
  - "request-timeout=300s"
kube-controller-manager-arg: ['terminated-pod-gc-threshold=10']
`

func TestLoadConfigSecurityKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(p, []byte(hardenedConfig), 0600)
	c := loadConfig([]string{"--config", p, "--kube-apiserver-arg=service-account-lookup=true"})
	if !encryptionEnabled(c) || encryptionProvider(c) != "secretbox" {
		t.Fatalf("secrets-encryption: %v %q", c["secrets-encryption"], c["secrets-encryption-provider"])
	}
	want := []string{"admission-control-config-file=/var/lib/rancher/k3s/server/psa.yaml",
		"audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log",
		"audit-policy-file=/var/lib/rancher/k3s/server/audit.yaml", "audit-log-maxage=30", "request-timeout=300s",
		"service-account-lookup=true"}
	if !reflect.DeepEqual(c["kube-apiserver-arg"], want) {
		t.Fatalf("kube-apiserver-arg: %q", c["kube-apiserver-arg"])
	}
	if !reflect.DeepEqual(c["kube-controller-manager-arg"], []string{"terminated-pod-gc-threshold=10"}) {
		t.Fatalf("kube-controller-manager-arg: %q", c["kube-controller-manager-arg"])
	}
	if encryptionEnabled(loadConfig([]string{"--config", "/nonexistent"})) {
		t.Fatal("secrets-encryption defaults to off")
	}
	if !encryptionEnabled(loadConfig([]string{"--config", "/nonexistent", "--secrets-encryption"})) {
		t.Fatal("--secrets-encryption (no value) turns it on")
	}
}

func TestComponentArgsOverrideDefaults(t *testing.T) {
	got := componentArgs(map[string]string{"profiling": "false", "anonymous-auth": "true"},
		[]string{"anonymous-auth=false", "--audit-log-maxage=30"})
	want := []string{"--anonymous-auth=false", "--audit-log-maxage=30", "--profiling=false"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
}

func TestHostPaths(t *testing.T) {
	d := t.TempDir()
	pol := filepath.Join(d, "policy.yaml")
	os.WriteFile(pol, []byte("x"), 0600)
	dirs, files := hostPaths([]string{"/usr/local/bin/kube-apiserver", "--audit-policy-file=" + pol,
		"--audit-log-path=/var/log/kubernetes/audit/audit.log", "--audit-log-maxage=30",
		"--tls-cert-file=/var/lib/rancher/k3s/server/tls/x.crt", "--admission-control-config-file=/etc/rancher/k3s/psa.yaml",
		"--audit-log-path2=/top.log"})
	if !reflect.DeepEqual(dirs, []string{d, "/var/log/kubernetes/audit"}) {
		t.Fatalf("dirs %q", dirs)
	}
	if !reflect.DeepEqual(files, []string{pol}) {
		t.Fatalf("files %q", files)
	}
	c1 := configHash([]string{"a"}, files)
	os.WriteFile(pol, []byte("y"), 0600)
	if configHash([]string{"a"}, files) == c1 {
		t.Fatal("the hash must follow the content of the files")
	}
}

func TestEncryptionConfigLayout(t *testing.T) {
	ks := keySet{aescbc: []encKey{{Name: "aescbckey", Secret: "c2VjcmV0"}}}
	got := string(marshalEncryption(ks, providerAESCBC, true))
	want := `{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],` +
		`"providers":[{"aescbc":{"keys":[{"name":"aescbckey","secret":"c2VjcmV0"}]}},{"identity":{}}]}]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// migrating to secretbox: the new type first, the old type still decrypts, identity last; disabled: identity first
	ks.secretbox = []encKey{{Name: "secretboxkey-2026-01-02T03:04:05Z", Secret: "c2Vj"}}
	var c encConfig
	json.Unmarshal(marshalEncryption(ks, providerSecretbox, true), &c)
	ps := c.Resources[0].Providers
	if len(ps) != 3 || ps[0].Secretbox == nil || ps[1].AESCBC == nil || ps[2].Identity == nil {
		t.Fatalf("enabled secretbox: %+v", ps)
	}
	json.Unmarshal(marshalEncryption(ks, providerSecretbox, false), &c)
	ps = c.Resources[0].Providers
	if ps[0].Identity == nil || ps[1].Secretbox == nil {
		t.Fatalf("disabled: %+v", ps)
	}
	rightRotate(&ks, providerAESCBC)
	appendNewKey(&ks, providerAESCBC)
	rightRotate(&ks, providerAESCBC)
	if !strings.HasPrefix(ks.aescbc[0].Name, "aescbckey-") || ks.aescbc[1].Name != "aescbckey" {
		t.Fatalf("rotate: %+v", ks.aescbc)
	}
}

func capture(f func()) string {
	r, w, _ := os.Pipe()
	old := os.Stdout
	os.Stdout = w
	f()
	w.Close()
	os.Stdout = old
	b, _ := io.ReadAll(r)
	return string(b)
}

// the output k3s prints (docs.k3s.io/cli/secrets-encrypt; k3s-io/k3s#12223 for secretbox)
func TestStatusOutput(t *testing.T) {
	on := true
	got := capture(func() {
		printStatus(encStatus{Stage: "start", Enable: &on, HashMatch: true, ActiveKey: "AES-CBC aescbckey"}, "")
	})
	want := "Encryption Status: Enabled\nCurrent Rotation Stage: start\nServer Encryption Hashes: All hashes match\n\n" +
		"Active  Key Type  Name\n------  --------  ----\n *      AES-CBC   aescbckey\n\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	got = capture(func() {
		printStatus(encStatus{Stage: "reencrypt_finished", Enable: &on, HashMatch: true,
			ActiveKey: "XSalsa20-POLY1305 secretboxkey", InactiveKeys: []string{"AES-CBC aescbckey"}}, "")
	})
	want = "Encryption Status: Enabled\nCurrent Rotation Stage: reencrypt_finished\nServer Encryption Hashes: All hashes match\n\n" +
		"Active  Key Type           Name\n------  --------           ----\n *      XSalsa20-POLY1305  secretboxkey\n" +
		"        AES-CBC            aescbckey\n\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if got := capture(func() { printStatus(encStatus{}, "") }); got != "Encryption Status: Disabled, no configuration file found\n" {
		t.Fatalf("got %q", got)
	}
}

func TestStaticPodHashFollowsTheImage(t *testing.T) {
	cmd := []string{"/usr/local/bin/kube-apiserver", "--secure-port=6443"}
	old, h1 := staticPod("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.35.4", cmd)
	cur, h2 := staticPod("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.36.3", cmd)
	if h1 == h2 {
		t.Fatal("a new image with the same command must give a new hash (READY after a binary upgrade)")
	}
	if !strings.Contains(old, "image: registry.k8s.io/kube-apiserver:v1.35.4\n") || !strings.Contains(cur, h2) {
		t.Fatalf("manifest:\n%s", cur)
	}
}
