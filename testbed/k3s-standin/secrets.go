// Secrets encryption at rest, emulating k3s's `--secrets-encryption`, `--secrets-encryption-provider` and the
// `k3s secrets-encrypt` command (docs.k3s.io "Secrets Encryption" and "k3s secrets-encrypt"; the file layout,
// key names, stages, node annotation and output formats follow k3s's pkg/daemons/control/deps,
// pkg/server/handlers/secrets-encrypt.go and pkg/cli/secretsencrypt).  The kube-apiserver underneath is the
// real one: it encrypts, decrypts and reloads the configuration itself.
//
// Differences from k3s (see testbed/README.md): there is no supervisor API, so `k3s secrets-encrypt` does the
// work itself in the CLI process (as root, with the server's admin credentials) instead of asking the server
// over https://127.0.0.1:6443/v1-k3s/encrypt/*; `reencrypt` finishes before it prints "reencryption started".
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const (
	encryptionConfig = credDir + "/encryption-config.json"
	encryptionState  = credDir + "/encryption-state.json" // k3s's runtime.EncryptionHash
	encryptionAnn    = "k3s.io/encryption-config-hash"
	controlPlaneKey  = "node-role.kubernetes.io/control-plane"

	providerAESCBC    = "aescbc"
	providerSecretbox = "secretbox"

	stageStart             = "start"
	stagePrepare           = "prepare"
	stageRotate            = "rotate"
	stageReencryptActive   = "reencrypt_active"
	stageReencryptFinished = "reencrypt_finished"
)

// The EncryptionConfiguration as k3s writes it: json.Marshal of apiserver's v1 types (field order and omitempty
// as there), so the file is byte-for-byte the shape k3s produces.
type encKey struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}
type encKeys struct {
	Keys []encKey `json:"keys"`
}
type encProvider struct {
	AESGCM    *encKeys  `json:"aesgcm,omitempty"`
	AESCBC    *encKeys  `json:"aescbc,omitempty"`
	Secretbox *encKeys  `json:"secretbox,omitempty"`
	Identity  *struct{} `json:"identity,omitempty"`
	KMS       any       `json:"kms,omitempty"`
}
type encResource struct {
	Resources []string      `json:"resources"`
	Providers []encProvider `json:"providers"`
}
type encConfig struct {
	Kind       string        `json:"kind"`
	APIVersion string        `json:"apiVersion"`
	Resources  []encResource `json:"resources"`
}

// the keys found in the file, by type (k3s's secretsencrypt.EncryptionKeys)
type keySet struct {
	aescbc, secretbox []encKey
}

func encryptionEnabled(c config) bool {
	return strings.EqualFold(c.get("secrets-encryption", "false"), "true")
}

func encryptionProvider(c config) string {
	p := c.get("secrets-encryption-provider", providerAESCBC)
	if p != providerAESCBC && p != providerSecretbox {
		fatal("secrets-encryption-provider %q: must be %s or %s", p, providerAESCBC, providerSecretbox)
	}
	return p
}

func newKeySecret() string {
	b := make([]byte, 32) // k3s: aescbcKeySize / secretsencrypt.KeySize = 32
	if _, err := rand.Read(b); err != nil {
		fatal("random: %v", err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// ensureEncryptionConfig is k3s's genEncryptionConfigAndState: on a server started with secrets-encryption, a
// missing cred/encryption-config.json is made with one key named "aescbckey" (or "secretboxkey") first and
// identity last, and cred/encryption-state.json = "start-<sha256 of the file>"; an existing file is kept as it
// is (turning the provider flag alone changes nothing: rotate-keys migrates).
func ensureEncryptionConfig(provider string) {
	if st, err := os.Stat(encryptionConfig); err == nil && st.Size() > 0 {
		if !exists(encryptionState) {
			b, _ := os.ReadFile(encryptionConfig)
			writeFile(encryptionState, []byte(stageStart+"-"+sha256hex(b)), 0600)
		}
		return
	}
	ks := keySet{}
	if provider == providerSecretbox {
		ks.secretbox = []encKey{{Name: "secretboxkey", Secret: newKeySecret()}}
	} else {
		ks.aescbc = []encKey{{Name: "aescbckey", Secret: newKeySecret()}}
	}
	b := marshalEncryption(ks, provider, true)
	writeFile(encryptionConfig, b, 0600)
	writeFile(encryptionState, []byte(stageStart+"-"+sha256hex(b)), 0600)
	logf("secrets-encryption: generated %s (%s key, identity last)", encryptionConfig, provider)
}

// marshalEncryption is k3s's WriteEncryptionConfig: enabled puts the provider's keys first (the other type's
// keys, if any, next: they still decrypt) and identity last; disabled puts identity first.
func marshalEncryption(ks keySet, provider string, enable bool) []byte {
	var prim, other []encProvider
	add := func(l *[]encProvider, keys []encKey, sb bool) {
		if len(keys) == 0 {
			return
		}
		if sb {
			*l = append(*l, encProvider{Secretbox: &encKeys{Keys: keys}})
		} else {
			*l = append(*l, encProvider{AESCBC: &encKeys{Keys: keys}})
		}
	}
	if provider == providerSecretbox {
		add(&prim, ks.secretbox, true)
		add(&other, ks.aescbc, false)
	} else {
		add(&prim, ks.aescbc, false)
		add(&other, ks.secretbox, true)
	}
	id := []encProvider{{Identity: &struct{}{}}}
	var ps []encProvider
	if enable {
		ps = append(append(prim, other...), id...)
	} else {
		ps = append(append(id, prim...), other...)
	}
	b, _ := json.Marshal(encConfig{Kind: "EncryptionConfiguration", APIVersion: "apiserver.config.k8s.io/v1",
		Resources: []encResource{{Resources: []string{"secrets"}, Providers: ps}}})
	return b
}

func readEncryption() ([]encProvider, keySet, error) {
	b, err := os.ReadFile(encryptionConfig)
	if err != nil {
		return nil, keySet{}, err
	}
	var c encConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, keySet{}, err
	}
	if len(c.Resources) == 0 || len(c.Resources[0].Providers) < 2 {
		return nil, keySet{}, fmt.Errorf("%s: unexpected configuration", encryptionConfig)
	}
	ps := c.Resources[0].Providers
	if len(ps) > 3 {
		return nil, keySet{}, fmt.Errorf("more than 3 providers (%d) found in secrets encryption", len(ps))
	}
	ks := keySet{}
	for _, p := range ps {
		if p.AESGCM != nil || p.KMS != nil {
			return nil, keySet{}, errors.New("non-standard encryption keys found")
		}
		if p.AESCBC != nil {
			ks.aescbc = append(ks.aescbc, p.AESCBC.Keys...)
		}
		if p.Secretbox != nil {
			ks.secretbox = append(ks.secretbox, p.Secretbox.Keys...)
		}
	}
	return ps, ks, nil
}

func isKeyProvider(p encProvider) bool { return p.AESCBC != nil || p.Secretbox != nil }

func writeEncryption(ks keySet, provider string, enable bool) string {
	b := marshalEncryption(ks, provider, enable)
	writeFile(encryptionConfig, b, 0600)
	return sha256hex(b)
}

// ---------------------------------------------------------- the API client --

// api talks to the local kube-apiserver with the server's admin client certificate (stdlib only).
type api struct {
	c    *http.Client
	base string
}

func newAPI() *api {
	cert, err := tls.LoadX509KeyPair(tlsDir+"/client-admin.crt", tlsDir+"/client-admin.key")
	if err != nil {
		fatalCLI("not a k3s server, or not started yet: %v", err)
	}
	caPEM, err := os.ReadFile(tlsDir + "/server-ca.crt")
	if err != nil {
		fatalCLI("%v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &api{base: "https://127.0.0.1:6443", c: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}}
}

func (a *api) do(method, path, ctype string, body []byte) ([]byte, int, error) {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, resp.StatusCode, err
}

type nodeList struct {
	Items []struct {
		Metadata struct {
			Name        string            `json:"name"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	} `json:"items"`
}

func (a *api) controlPlaneNodes() (nodeList, error) {
	var l nodeList
	b, _, err := a.do("GET", "/api/v1/nodes?labelSelector="+url.QueryEscape(controlPlaneKey+"=true"), "", nil)
	if err == nil {
		err = json.Unmarshal(b, &l)
	}
	return l, err
}

func (a *api) annotateNode(node, value string) error {
	p, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{encryptionAnn: value}}})
	_, _, err := a.do("PATCH", "/api/v1/nodes/"+url.PathEscape(node), "application/merge-patch+json", p)
	return err
}

// nodeStage is k3s's getEncryptionHashAnnotation: <stage>-<sha256 of the config> from this node's annotation.
func (a *api) nodeStage(node string) (string, string, error) {
	b, _, err := a.do("GET", "/api/v1/nodes/"+url.PathEscape(node), "", nil)
	if err != nil {
		return "", "", err
	}
	var n struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return "", "", err
	}
	if _, ok := n.Metadata.Labels[controlPlaneKey]; !ok {
		return "", "", fmt.Errorf("cannot manage secrets encryption on non control-plane node %s", node)
	}
	ann, ok := n.Metadata.Annotations[encryptionAnn]
	if !ok {
		return "", "", fmt.Errorf("missing annotation on node %s", node)
	}
	s := strings.Split(ann, "-")
	if len(s) != 2 {
		return "", "", fmt.Errorf("invalid annotation %s found on node %s", ann, node)
	}
	return s[0], s[1], nil
}

// verifyHashes is k3s's verifyEncryptionHashAnnotation: every control-plane node carries the same annotation,
// and (when prevStages is given) this node is in one of prevStages with the config file it annotated.
func (a *api) verifyHashes(node, prevStages string) error {
	nodes, err := a.controlPlaneNodes()
	if err != nil {
		return err
	}
	first, firstName := "", ""
	for _, n := range nodes.Items {
		h, ok := n.Metadata.Annotations[encryptionAnn]
		if ok && firstName == "" {
			first, firstName = h, n.Metadata.Name
		} else if ok && h != first {
			return fmt.Errorf("hash does not match between %s and %s", firstName, n.Metadata.Name)
		}
	}
	if prevStages == "" {
		return nil
	}
	stage, hash, err := a.nodeStage(node)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(encryptionConfig)
	if err != nil {
		return err
	}
	if !strings.Contains(prevStages, stage) {
		return fmt.Errorf("incorrect stage: %s found on node %s", stage, node)
	} else if hash != sha256hex(b) {
		return fmt.Errorf("invalid hash: %s found on node %s", hash, node)
	}
	return nil
}

// setStage is k3s's WriteEncryptionHashAnnotation: annotation <stage>-<sha256 of the config file>, and the same
// in cred/encryption-state.json unless skipFile (reencrypt_active is not persisted).
func (a *api) setStage(node, stage string, skipFile bool) error {
	b, err := os.ReadFile(encryptionConfig)
	if err != nil {
		return err
	}
	ann := stage + "-" + sha256hex(b)
	if err := a.annotateNode(node, ann); err != nil {
		return err
	}
	if !skipFile {
		writeFile(encryptionState, []byte(ann), 0600)
	}
	return nil
}

// bootstrapStage is k3s's BootstrapEncryptionHashAnnotation: the node annotation from encryption-state.json.
func (a *api) bootstrapStage(node string) error {
	b, err := os.ReadFile(encryptionState)
	if err != nil {
		return err
	}
	return a.annotateNode(node, string(b))
}

var reloadRE = regexp.MustCompile(`^apiserver_encryption_config_controller_automatic_reloads_total\{[^}]*status="success"[^}]*\} ([0-9.e+]+)`)

// reloads is the kube-apiserver's count of successful automatic reloads of the encryption configuration.
func (a *api) reloads() (float64, error) {
	b, _, err := a.do("GET", "/metrics", "", nil)
	if err != nil {
		return 0, err
	}
	n := 0.0
	for _, l := range strings.Split(string(b), "\n") {
		if m := reloadRE.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			n += v
		}
	}
	return n, nil
}

// waitReload is k3s's WaitForEncryptionConfigReload: the apiserver polls the file (automatic reload, about once
// a minute) and counts each reload in its metrics.
func (a *api) waitReload(before float64) error {
	t0 := time.Now()
	for time.Since(t0) < 150*time.Second {
		if n, err := a.reloads(); err == nil && n > before {
			logf("secrets-encrypt: kube-apiserver reloaded %s after %.0fs", encryptionConfig, time.Since(t0).Seconds())
			return nil
		}
		time.Sleep(2 * time.Second)
	}
	return errors.New("kube-apiserver did not reload the encryption configuration within 150s")
}

// updateSecrets is k3s's updateSecrets: every Secret read and written back through the API server (a list,
// then an update of each; conflicts are skipped, the object changed meanwhile and was written anyway), so etcd
// holds it encrypted with the current first provider.
func (a *api) updateSecrets() (int, error) {
	n, cont := 0, ""
	for {
		p := "/api/v1/secrets?limit=50"
		if cont != "" {
			p += "&continue=" + url.QueryEscape(cont)
		}
		b, _, err := a.do("GET", p, "", nil)
		if err != nil {
			return n, err
		}
		var l struct {
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(b, &l); err != nil {
			return n, err
		}
		for _, s := range l.Items {
			md, _ := s["metadata"].(map[string]any)
			ns, _ := md["namespace"].(string)
			name, _ := md["name"].(string)
			s["apiVersion"], s["kind"] = "v1", "Secret"
			body, _ := json.Marshal(s)
			if _, code, err := a.do("PUT", "/api/v1/namespaces/"+url.PathEscape(ns)+"/secrets/"+url.PathEscape(name),
				"application/json", body); err != nil && code != http.StatusConflict && code != http.StatusNotFound {
				return n, fmt.Errorf("failed to update secret: %v", err)
			}
			n++
		}
		if cont = l.Metadata.Continue; cont == "" {
			break
		}
	}
	logf("secrets-encrypt: reencrypted %d secrets", n)
	return n, nil
}

// --------------------------------------------------- k3s secrets-encrypt --

func fatalCLI(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "FATA[0000] see server log for details: "+f+"\n", a...)
	os.Exit(1)
}

// encryptionState is k3s's EncryptionState (the JSON of `status -o json`)
type encStatus struct {
	Stage        string   `json:"stage"`
	ActiveKey    string   `json:"activekey"`
	Enable       *bool    `json:"enable,omitempty"`
	HashMatch    bool     `json:"hashmatch,omitempty"`
	HashError    string   `json:"hasherror,omitempty"`
	InactiveKeys []string `json:"inactivekeys,omitempty"`
}

func secretsEncrypt(args []string) {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Println(`NAME:
   k3s secrets-encrypt - Control secrets encryption and keys rotation (k3s STAND-IN)

USAGE:
   k3s secrets-encrypt command [command options] [arguments...]

COMMANDS:
   status       Print current status of secrets encryption
   enable       Enable secrets encryption
   disable      Disable secrets encryption
   prepare      Prepare for encryption keys rotation
   rotate       Rotate secrets encryption keys
   reencrypt    Reencrypt all data with new encryption key
   rotate-keys  Dynamically rotates secrets encryption keys and re-encrypt secrets`)
		if len(args) == 0 {
			os.Exit(1)
		}
		return
	}
	if os.Geteuid() != 0 {
		fatalCLI("must run as root")
	}
	cmd, rest := args[0], args[1:]
	force, skip, output := false, false, ""
	var cfgArgs []string
	for i := 0; i < len(rest); i++ {
		switch a := rest[i]; {
		case a == "-f" || a == "--f" || a == "--force":
			force = true
		case a == "-s" || a == "--s" || a == "--skip":
			skip = true
		case a == "-o" || a == "--output":
			if i+1 < len(rest) {
				output = rest[i+1]
				i++
			}
		case strings.HasPrefix(a, "--output=") || strings.HasPrefix(a, "-o="):
			output = a[strings.Index(a, "=")+1:]
		default:
			cfgArgs = append(cfgArgs, a)
		}
	}
	cfg := loadConfig(cfgArgs)
	h, _ := os.Hostname()
	node := strings.ToLower(cfg.get("node-name", h))
	enabled := encryptionEnabled(cfg)
	provider := encryptionProvider(cfg)
	a := newAPI()
	if cmd == "status" {
		st := encryptionStatusOf(a, node, enabled)
		printStatus(st, output)
		return
	}
	if !enabled {
		// k3s without --secrets-encryption has no encryption configuration at all
		fatalCLI("open : no such file or directory")
	}
	var err error
	switch cmd {
	case "enable", "disable":
		err = encryptionEnable(a, node, provider, cmd == "enable")
		if err == nil {
			fmt.Printf("secrets-encryption %sd\n", cmd)
		}
	case "prepare":
		err = encryptionPrepare(a, node, provider, force)
		if err == nil {
			fmt.Println("prepare completed successfully")
		}
	case "rotate":
		err = encryptionRotate(a, node, provider, force)
		if err == nil {
			fmt.Println("rotate completed successfully")
		}
	case "reencrypt":
		err = encryptionReencrypt(a, node, provider, force, skip)
		if err == nil {
			fmt.Println("reencryption started")
		}
	case "rotate-keys":
		err = encryptionRotateKeys(a, node, provider)
		if err == nil {
			fmt.Println("keys rotated, reencryption finished")
		}
	default:
		fmt.Fprintf(os.Stderr, "No help topic for '%s'\n", cmd)
		os.Exit(3)
	}
	if err != nil {
		fatalCLI("secret-encrypt error: %v", err)
	}
}

// encryptionStatusOf is k3s's encryptionStatus handler.
func encryptionStatusOf(a *api, node string, enabled bool) encStatus {
	st := encStatus{}
	if !enabled {
		return st // no configuration file path: "Disabled, no configuration file found"
	}
	ps, _, err := readEncryption()
	if os.IsNotExist(err) {
		return st
	} else if err != nil {
		fatalCLI("%v", err)
	}
	t, f := true, false
	if ps[len(ps)-1].Identity != nil && isKeyProvider(ps[0]) {
		st.Enable = &t
	} else if ps[0].Identity != nil && isKeyProvider(ps[1]) {
		st.Enable = &f
	}
	if err := a.verifyHashes(node, ""); err != nil {
		st.HashError = err.Error()
	} else {
		st.HashMatch = true
	}
	stage, _, err := a.nodeStage(node)
	if err != nil {
		fatalCLI("%v", err)
	}
	st.Stage = stage
	active := true
	for _, p := range ps {
		add := func(typ string, keys []encKey) {
			for _, k := range keys {
				if active {
					active = false
					st.ActiveKey = typ + " " + k.Name
				} else {
					st.InactiveKeys = append(st.InactiveKeys, typ+" "+k.Name)
				}
			}
		}
		if p.AESCBC != nil {
			add("AES-CBC", p.AESCBC.Keys)
		}
		if p.Secretbox != nil {
			add("XSalsa20-POLY1305", p.Secretbox.Keys)
		}
		if p.Identity != nil {
			active = false
		}
	}
	return st
}

// printStatus prints as k3s's CLI does (tabwriter, minwidth 0, padding 2).
func printStatus(st encStatus, output string) {
	if strings.ToLower(output) == "json" {
		b, _ := json.MarshalIndent(st, "", "\t")
		fmt.Println(string(b))
		return
	}
	if st.Enable == nil {
		fmt.Println("Encryption Status: Disabled, no configuration file found")
		return
	}
	out := "Encryption Status: Disabled\n"
	if *st.Enable {
		out = "Encryption Status: Enabled\n"
	}
	out += fmt.Sprintln("Current Rotation Stage:", st.Stage)
	if st.HashMatch {
		out += fmt.Sprintln("Server Encryption Hashes: All hashes match")
	} else {
		out += fmt.Sprintf("Server Encryption Hashes: %s\n", st.HashError)
	}
	var tb bytes.Buffer
	w := tabwriter.NewWriter(&tb, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\n")
	fmt.Fprintf(w, "Active\tKey Type\tName\n")
	fmt.Fprintf(w, "------\t--------\t----\n")
	if st.ActiveKey != "" {
		typ, name, _ := strings.Cut(st.ActiveKey, " ")
		fmt.Fprintf(w, " *\t%s\t%s\n", typ, name)
	}
	for _, k := range st.InactiveKeys {
		typ, name, _ := strings.Cut(k, " ")
		fmt.Fprintf(w, "\t%s\t%s\n", typ, name)
	}
	w.Flush()
	fmt.Println(out + tb.String())
}

func appendNewKey(ks *keySet, provider string) {
	prefix := "aescbckey-"
	if provider == providerSecretbox {
		prefix = "secretboxkey-"
	}
	k := encKey{Name: prefix + time.Now().Format(time.RFC3339), Secret: newKeySecret()}
	if provider == providerSecretbox {
		ks.secretbox = append(ks.secretbox, k)
	} else {
		ks.aescbc = append(ks.aescbc, k)
	}
	logf("secrets-encrypt: adding secrets-encryption key %s", k.Name)
}

// rightRotate moves the provider's last (newest) key first.
func rightRotate(ks *keySet, provider string) {
	l := &ks.aescbc
	if provider == providerSecretbox {
		l = &ks.secretbox
	}
	if n := len(*l); n > 1 {
		*l = append([]encKey{(*l)[n-1]}, (*l)[:n-1]...)
	}
}

func encryptionEnable(a *api, node, provider string, enable bool) error {
	ps, ks, err := readEncryption()
	if err != nil {
		return err
	}
	switch {
	case ps[len(ps)-1].Identity != nil && isKeyProvider(ps[0]) && !enable:
		logf("secrets-encrypt: disabling secrets encryption")
	case !enable:
		logf("secrets-encrypt: secrets encryption already disabled")
		return nil
	case ps[0].Identity != nil && isKeyProvider(ps[1]):
		found := false
		for _, p := range ps[1:] {
			if (provider == providerAESCBC && p.AESCBC != nil) || (provider == providerSecretbox && p.Secretbox != nil) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("cannot enable secrets encryption with %s key type, no keys found", provider)
		}
		logf("secrets-encrypt: enabling secrets encryption")
	case enable:
		logf("secrets-encrypt: secrets encryption already enabled")
		return nil
	default:
		return errors.New("unable to enable/disable secrets encryption, unknown configuration")
	}
	before, err := a.reloads()
	if err != nil {
		return err
	}
	writeEncryption(ks, provider, enable)
	// k3s rewrites the Secrets right away (reencryptAndRemoveKey with skip); the stand-in first waits for the
	// kube-apiserver to load the new order, so that the rewrite really changes what etcd holds
	if err := a.waitReload(before); err != nil {
		return err
	}
	if _, err := a.updateSecrets(); err != nil {
		return err
	}
	return a.bootstrapStage(node)
}

func encryptionPrepare(a *api, node, provider string, force bool) error {
	if err := a.verifyHashes(node, stageStart+"-"+stageReencryptFinished); err != nil && !force {
		return err
	}
	if provider == providerSecretbox {
		return errors.New("prepare does not support secretbox key type, use rotate-keys instead")
	}
	_, ks, err := readEncryption()
	if err != nil {
		return err
	}
	appendNewKey(&ks, provider)
	writeEncryption(ks, provider, true)
	return a.setStage(node, stagePrepare, false)
}

func encryptionRotate(a *api, node, provider string, force bool) error {
	if err := a.verifyHashes(node, stagePrepare); err != nil && !force {
		return err
	}
	if provider == providerSecretbox {
		return errors.New("rotate does not support secretbox key type, use rotate-keys instead")
	}
	_, ks, err := readEncryption()
	if err != nil {
		return err
	}
	rightRotate(&ks, provider)
	writeEncryption(ks, provider, true)
	logf("secrets-encrypt: encryption %s keys right rotated", provider)
	return a.setStage(node, stageRotate, false)
}

func encryptionReencrypt(a *api, node, provider string, force, skip bool) error {
	if err := a.verifyHashes(node, stageRotate); err != nil && !force {
		return err
	}
	if provider == providerSecretbox {
		return errors.New("reencrypt does not support secretbox key type, use rotate-keys instead")
	}
	if err := a.setStage(node, stageReencryptActive, true); err != nil {
		return err
	}
	return reencryptAndRemoveKey(a, node, provider, skip)
}

// encryptionRotateKeys is k3s's rotate-keys: a new key of the configured provider first (the old keys after it,
// identity last), wait until the kube-apiserver reloaded the file, rewrite every Secret, drop the old key.
func encryptionRotateKeys(a *api, node, provider string) error {
	if err := a.verifyHashes(node, stageStart+"-"+stageReencryptFinished); err != nil {
		return err
	}
	before, err := a.reloads()
	if err != nil {
		return err
	}
	if err := a.setStage(node, stageReencryptActive, true); err != nil {
		return err
	}
	_, ks, err := readEncryption()
	if err != nil {
		return err
	}
	appendNewKey(&ks, provider)
	writeEncryption(ks, provider, true)
	rightRotate(&ks, provider)
	logf("secrets-encrypt: rotating secrets-encryption %s keys", provider)
	writeEncryption(ks, provider, true)
	if err := a.waitReload(before); err != nil {
		return err
	}
	return reencryptAndRemoveKey(a, node, provider, false)
}

func reencryptAndRemoveKey(a *api, node, provider string, skip bool) error {
	if _, err := a.updateSecrets(); err != nil {
		return err
	}
	if skip {
		return a.bootstrapStage(node)
	}
	_, ks, err := readEncryption()
	if err != nil {
		return err
	}
	// remove the old key; when there is a single key of the provider's type, the cluster just migrated between
	// key types: remove the other type's last key
	same, other := &ks.aescbc, &ks.secretbox
	if provider == providerSecretbox {
		same, other = &ks.secretbox, &ks.aescbc
	}
	victim := same
	if len(*same) == 1 && len(*other) > 0 {
		victim = other
	}
	if n := len(*victim); n > 0 && !(victim == same && n == 1) {
		logf("secrets-encrypt: removing key %s", (*victim)[n-1].Name)
		*victim = (*victim)[:n-1]
	}
	writeEncryption(ks, provider, true)
	return a.setStage(node, stageReencryptFinished, false)
}
