"""Unit tests of the pure parts of the test bed: config, cache keys, renderings, parsing, errors."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from typing import Any
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from selfhost_testbed import assets, cache, cli, config, control_plane, gobuild, hosts, network, proc, rootfs  # noqa: E402
from selfhost_testbed.builds import addons, bundle, clis, debs, images, k3s_standin, kubernetes  # noqa: E402
from selfhost_testbed.config import Config  # noqa: E402
from selfhost_testbed.errors import TestbedError  # noqa: E402
from selfhost_testbed.versions import (BUNDLE_PREVIOUS_VERSION, BUNDLE_VERSION, K3S_PREVIOUS_VERSION,  # noqa: E402
                                      K3S_CNI_PLUGINS, K3S_VERSION, K8S_PREVIOUS_VERSION, K8S_VERSION,
                                      KUBE_CACHE_VERSION)


def cfg_for(**env: str) -> Config:
    return Config.from_env(dict({"HOME": "/home/u"}, **env), uid=1000)


@contextlib.contextmanager
def using(cfg: Config) -> Any:
    saved = config._current
    config.use(cfg)
    try:
        yield cfg
    finally:
        config._current = saved


class ConfigTest(unittest.TestCase):
    def test_instance_0_keeps_the_historical_names(self) -> None:
        c = cfg_for()
        self.assertEqual((c.instance, c.name_prefix, c.bridge, c.nft_table), (0, "tb", "tbselfhost0", "selfhost_testbed"))
        self.assertEqual(c.state, "/tmp/selfhost-testbed-1000")
        self.assertEqual(c.cache, "/home/u/.cache/selfhost-testbed")
        self.assertEqual(c.apt_cache, "/home/u/.cache/selfhost-testbed/apt-cacher-ng")
        self.assertEqual((c.host_name(1), c.host_addr(1)), ("tb-host1", "10.77.0.11"))
        self.assertEqual((c.k8s_host_name(2), c.k8s_host_addr(2)), ("tb-k8s2", "10.77.0.102"))

    def test_instance_n_shifts_subnet_names_ports_and_dirs(self) -> None:
        c = cfg_for(SELFHOST_TESTBED_INSTANCE="7")
        self.assertEqual((c.subnet, c.host_gw, c.bridge, c.nft_table), ("10.77.7", "10.77.7.1", "tbselfhost7",
                                                                          "selfhost_testbed7"))
        self.assertEqual((c.host_name(3), c.k8s_host_addr(1)), ("tb7-host3", "10.77.7.101"))
        base = cfg_for()
        for port in ("etcd_port", "etcd_peer_port", "apiserver_port", "kcm_port", "sched_port", "kwok_port"):
            self.assertEqual(getattr(c, port), getattr(base, port) + 7000, port)
        self.assertEqual(c.apt_proxy_port, base.apt_proxy_port)  # on its own address, so the same port
        self.assertEqual(c.state, "/tmp/selfhost-testbed-1000-i7")
        self.assertTrue(c.apt_cache.endswith("/apt-cacher-ng-i7"))
        self.assertEqual(c.cache, base.cache)  # the build cache is shared

    def test_directories_from_the_environment(self) -> None:
        c = cfg_for(XDG_CACHE_HOME="/x", SELFHOST_TESTBED_DIR="/s", SELFHOST_TESTBED_INSTANCE="2")
        self.assertEqual((c.cache, c.state), ("/x/selfhost-testbed", "/s"))
        self.assertEqual(cfg_for(XDG_CACHE_HOME="").cache, "/home/u/.cache/selfhost-testbed")
        self.assertEqual(cfg_for(SELFHOST_TESTBED_INSTANCE="").instance, 0)

    def test_bad_instance_is_refused(self) -> None:
        for bad in ("51", "-1", "x"):
            with self.assertRaises(TestbedError, msg=bad):
                cfg_for(SELFHOST_TESTBED_INSTANCE=bad)
        self.assertEqual(cfg_for(SELFHOST_TESTBED_INSTANCE="50").subnet, "10.77.50")

    def test_config_is_frozen(self) -> None:
        with self.assertRaises(AttributeError):
            cfg_for().instance = 3  # type: ignore[misc]

    def test_tofu_override(self) -> None:
        self.assertIsNone(cfg_for().tofu_version)
        self.assertEqual(cfg_for(SELFHOST_TESTBED_TOFU_VERSION="v1.10.6").tofu_version, "v1.10.6")


class CacheKeyTest(unittest.TestCase):
    def test_cache_dir_is_component_dash_version(self) -> None:
        with using(cfg_for(XDG_CACHE_HOME="/c")):
            self.assertEqual(cache.cache_dir("kubernetes", KUBE_CACHE_VERSION),
                             "/c/selfhost-testbed/kubernetes-%s-kwok-v0.8.0-etcd-v3.6.8" % K8S_VERSION)
            self.assertEqual(cache.cache_dir("k8s-bundle", BUNDLE_VERSION), "/c/selfhost-testbed/k8s-bundle-v1.36.3-9")
            self.assertEqual(cache.cache_dir("k8s-bundle", BUNDLE_PREVIOUS_VERSION),
                             "/c/selfhost-testbed/k8s-bundle-v1.35.4-3+v1.36.3-9")

    def test_k3s_standin_key_covers_sources_and_payload(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "main.go"), os.path.join(d, "go.mod")
            for p, t in ((a, "package main\n"), (b, "module x\n")):
                with open(p, "w") as f:
                    f.write(t)
            h1 = k3s_standin.source_hash([b, a])
            with open(a, "a") as f:
                f.write("// changed\n")
            self.assertNotEqual(h1, k3s_standin.source_hash([b, a]))
        v = k3s_standin.cache_version("a" * 64, "b" * 64)
        self.assertEqual(v, "v1.36.3+k3s1-4-%s-%s" % ("a" * 12, "b" * 12))
        # the previous release's stand-in: same source and recipe, its own version (and payload) in the key
        v = k3s_standin.cache_version("a" * 64, "c" * 64, images.PREVIOUS)
        self.assertEqual(v, "v1.35.4+k3s1-4-%s-%s" % ("a" * 12, "c" * 12))
        self.assertEqual((k3s_standin.k3s_version(images.CURRENT), k3s_standin.k3s_version(images.PREVIOUS)),
                         (K3S_VERSION, K3S_PREVIOUS_VERSION))

    @unittest.skipUnless(shutil.which("go"), "no go on PATH")
    def test_k3s_standin_go_tests(self) -> None:
        """The stand-in's own tests (k3s-standin/main_test.go: config keys, kube-*-arg, host paths, the
        encryption config and `secrets-encrypt status` output); stdlib only, a second or two with a warm cache."""
        r = subprocess.run(["go", "test", "./..."], cwd=k3s_standin.K3S_STANDIN_SRC, capture_output=True, text=True,
                           env=dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local"), timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_payload_trailer_layout(self) -> None:
        t = k3s_standin.payload_trailer(0x10, 0x200, "c" * 64)
        self.assertEqual(t, b"K3SSTANDINPAYLD1" + b"0000000000000010" + b"0000000000000200" + b"c" * 64)

    def test_test_tools_build_pebble_into_the_bundles_cache_entry(self) -> None:
        """scripts/test-tools and the bundle share one pebble build: same version, same directory."""
        from selfhost_testbed.versions import PEBBLE_VERSION
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "..", "scripts", "test-tools")) as f:
            tools = f.read()
        self.assertIn("PEBBLE_VERSION=%s\n" % PEBBLE_VERSION, tools)
        self.assertIn('pb_dir="$cache/pebble-$PEBBLE_VERSION"', tools)
        with using(cfg_for(XDG_CACHE_HOME="/c")):
            self.assertEqual(cache.cache_dir("pebble", PEBBLE_VERSION), "/c/selfhost-testbed/pebble-" + PEBBLE_VERSION)

    def test_every_image_has_a_spec(self) -> None:
        names = [fn[:-4] for _, fn in images.images_list()]
        self.assertEqual(sorted(names), sorted(images.IMAGE_SPEC))


class RenderTest(unittest.TestCase):
    def test_templates_have_no_unfilled_placeholder(self) -> None:
        c = cfg_for(SELFHOST_TESTBED_INSTANCE="4")
        for text in (network.forward_rules(c), network.acng_conf(c, "/s/acng"), hosts.host0_network(c, "10.77.4.11", True),
                     control_plane.kubeconfig(c, "CA", "admin", "CERT", "KEY"), control_plane.fake_nodes()):
            self.assertNotIn("${", text)

    def test_forward_rules_name_this_instance(self) -> None:
        r = network.forward_rules(cfg_for(SELFHOST_TESTBED_INSTANCE="4"))
        self.assertTrue(r.startswith("table inet selfhost_testbed4 {\n"))
        self.assertIn('iifname "tbselfhost4" oifname "tbselfhost4" accept\n  iifname "tbselfhost4" drop', r)

    def test_only_k8s_hosts_get_a_default_route(self) -> None:
        c = cfg_for(SELFHOST_TESTBED_INSTANCE="4")
        self.assertIn("Address=10.77.4.101/24\nGateway=10.77.4.1\nLinkLocalAddressing=no\n",
                      hosts.host0_network(c, "10.77.4.101", True))
        self.assertIn("Address=10.77.4.11/24\nLinkLocalAddressing=no\n", hosts.host0_network(c, "10.77.4.11", False))

    def test_kubeconfig_points_at_this_instance(self) -> None:
        k = control_plane.kubeconfig(cfg_for(SELFHOST_TESTBED_INSTANCE="1"), "CA", "kwok", "C", "K")
        self.assertIn("server: https://127.0.0.1:17443\n", k)
        self.assertIn("context: {cluster: selfhost-testbed, user: kwok}\n", k)

    def test_nspawn_flags_of_k8s_hosts(self) -> None:
        c = cfg_for()
        plain = hosts.nspawn_cmd(c, "tb-host1", "/m", False)
        k8s = hosts.nspawn_cmd(c, "tb-host1", "/m", True)
        self.assertEqual(k8s[:len(plain)], plain)
        self.assertEqual(k8s[len(plain):], hosts.K8S_NSPAWN_ARGS)

    def test_terraform_backend_stub_is_named_after_the_backend(self) -> None:
        s = assets.terraform_backend_stub("s3")
        self.assertTrue(s.startswith('// Package s3 is a stub'))
        self.assertIn("\npackage s3\n", s)
        self.assertNotIn("BACKEND_NAME", s)

    def test_flannel_main_without_dropped_backends(self) -> None:
        from selfhost_testbed.builds import addons
        main = ('import (\n\t_ "github.com/flannel-io/flannel/pkg/backend/vxlan"\n'
                '\t_ "github.com/flannel-io/flannel/pkg/backend/tencentvpc"\n'
                '\t_ "github.com/flannel-io/flannel/pkg/backend/udp"\n)\n')
        self.assertEqual(addons.flannel_main_without_backends(main),
                         'import (\n\t_ "github.com/flannel-io/flannel/pkg/backend/vxlan"\n)\n')
        with self.assertRaises(TestbedError):
            addons.flannel_main_without_backends("import ()\n")


class EnvOutputTest(unittest.TestCase):
    def test_nothing_up_prints_nothing(self) -> None:
        self.assertEqual(cli.env_exports(cfg_for(), False, [], None, []), [])

    def test_everything_up(self) -> None:
        c = cfg_for(SELFHOST_TESTBED_DIR="/s", XDG_CACHE_HOME="/c", SELFHOST_TESTBED_INSTANCE="5")
        hs = hosts.host_entries(c, 2, 1)
        with using(c):
            lines = dict(cli.env_exports(c, True, hs, "/c/b", ["/t1", "/t2"]))
        self.assertEqual(lines["SELFHOST_TEST_HOSTS"], "10.77.5.11:22 10.77.5.12:22")
        self.assertEqual(lines["SELFHOST_TEST_K8S_HOSTS"], "10.77.5.101:22")
        self.assertEqual(lines["SELFHOST_TEST_K8S_BUNDLE"], "/c/b")
        self.assertEqual(lines["SELFHOST_TEST_APT_PROXY"], "http://10.77.5.1:3142")
        self.assertEqual(lines["KUBECONFIG"], "/s/kubeconfig")
        self.assertEqual(lines["SELFHOST_TEST_CLIS"], "/t1 /t2")

    def test_previous_bundle_and_its_version(self) -> None:
        c = cfg_for()
        hs = hosts.host_entries(c, 0, 2)
        with using(c):
            lines = cli.env_exports(c, False, hs, "/b", [], "/bp")
            self.assertNotIn("SELFHOST_TEST_K8S_BUNDLE_PREVIOUS", dict(cli.env_exports(c, False, hs, "/b", [])))
        names = [k for k, _ in lines]
        self.assertEqual(names[names.index("SELFHOST_TEST_K8S_BUNDLE"):][:3], [
            "SELFHOST_TEST_K8S_BUNDLE", "SELFHOST_TEST_K8S_BUNDLE_PREVIOUS", "SELFHOST_TEST_K8S_PREVIOUS_VERSION"])
        self.assertEqual(dict(lines)["SELFHOST_TEST_K8S_BUNDLE_PREVIOUS"], "/bp")
        self.assertEqual(dict(lines)["SELFHOST_TEST_K8S_PREVIOUS_VERSION"], "v1.35.4")

    def test_bundle_only_with_k8s_hosts(self) -> None:
        c = cfg_for()
        names = [k for k, _ in cli.env_exports(c, False, hosts.host_entries(c, 1, 0), "/b", [])]
        self.assertNotIn("SELFHOST_TEST_K8S_BUNDLE", names)

    def test_values_are_shell_quoted(self) -> None:
        out = cli.render_exports([("A", "it's"), ("B", "x y")])
        self.assertEqual(out, "export A='it'\\''s'\nexport B='x y'\n")


class ParseTest(unittest.TestCase):
    def test_arguments(self) -> None:
        p = cli.parser()
        a = p.parse_args(["up", "--hosts", "0", "--k8s-hosts", "3", "--no-cluster"])
        self.assertEqual((a.cmd, a.hosts, a.k8s_hosts, a.no_cluster), ("up", 0, 3, True))
        a = p.parse_args(["up"])
        self.assertEqual((a.hosts, a.k8s_hosts, a.no_cluster), (3, 0, False))
        self.assertEqual(p.parse_args(["build"]).what, "all")
        with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(SystemExit):
            p.parse_args(["build", "bogus"])
        for name in cli.commands():  # every command has a parser, and every parser a command
            self.assertEqual(p.parse_args([name]).cmd, name)

    def test_tofu_candidates_newest_per_pattern(self) -> None:
        vs = ["v1.6.3", "v1.10.6", "v1.10.10", "v1.12.0-rc1", "v1.12.6", "v1.12.10", "v1.9.2"]
        self.assertEqual(clis.pick_tofu_candidates(vs), ["v1.12.10", "v1.10.10"])

    def test_cpu_meter_counts_a_commands_descendants_on_this_thread_only(self) -> None:
        burn = [sys.executable, "-c", "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"]
        other: list[float] = []

        def elsewhere() -> None:
            with proc.cpu_meter() as m:
                pass
            other.append(m.seconds)
        with proc.cpu_meter() as outer:
            with proc.cpu_meter() as inner:
                # a grandchild: the shell waits for it, so wait4 on the shell reports its time too
                proc.run(["sh", "-c", '"$0" "$@"'] + burn, quiet=True)
            t = threading.Thread(target=elsewhere)
            t.start()
            t.join()
        self.assertGreaterEqual(inner.seconds, 0.25)
        self.assertEqual(outer.seconds, inner.seconds)
        self.assertEqual(other, [0.0])
        with proc.cpu_meter() as after:
            pass
        self.assertEqual(after.seconds, 0.0)

    def test_system_terraform_stands_in_only_for_a_release_the_bed_does_not_build(self) -> None:
        self.assertTrue(clis.usable_system_terraform("1.11.4"))
        self.assertTrue(clis.usable_system_terraform("1.8.5"))
        for v in (None, "", "1.0.3", "1.13.3", "0.15.5", "1.0.11", "1.12.0-alpha20250101", "1.11.4-dev", "x"):
            self.assertFalse(clis.usable_system_terraform(v), v)

    def test_system_terraform_version_is_read_from_its_first_line(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            fake = os.path.join(d, "terraform")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\necho 'Terraform v1.11.4'\necho 'on linux_amd64'\n")
            os.chmod(fake, 0o755)
            self.assertEqual(clis.terraform_version_of(fake), "1.11.4")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\necho 'OpenTofu v1.12.6'\n")
            self.assertIsNone(clis.terraform_version_of(fake))
            self.assertIsNone(clis.terraform_version_of(os.path.join(d, "missing")))

    def test_tofu_replaces_drop_local_paths(self) -> None:
        gomod = ("module m\n\nreplace (\n\t// c\n\ta => b v1\n\tfoo => ./foo\n)\nreplace c v1 => d v2\n"
                 "replace e => ../e\n")
        self.assertEqual(clis.tofu_replaces(gomod), ["a => b v1", "c v1 => d v2"])

    def test_kube_wrapper_gomod_replaces_staging_modules(self) -> None:
        kmod = ("module k8s.io/kubernetes\n\ngo 1.26.0\n\ngodebug default=go1.26\n\nrequire (\n\tk8s.io/api v0.0.0\n"
                "\tk8s.io/utils v0.0.0-2025\n\tk8s.io/apiserver v0.0.0 // indirect\n)\n")
        m = gobuild.kube_wrapper_gomod("w", kmod)
        self.assertIn("go 1.26.0\ngodebug default=go1.26\n", m)
        self.assertIn("\tk8s.io/api => k8s.io/api v0.36.3\n\tk8s.io/apiserver => k8s.io/apiserver v0.36.3\n)", m)
        self.assertNotIn("k8s.io/utils =>", m)

    def test_previous_release_wrapper_requires_kubernetes_alone(self) -> None:
        kmod = ("module k8s.io/kubernetes\n\ngo 1.25.0\n\nrequire (\n\tk8s.io/api v0.0.0\n)\n")
        m = gobuild.kube_wrapper_gomod("w", kmod, "v1.35.4", with_kwok_etcd=False)
        self.assertIn("require (\n\tk8s.io/kubernetes v1.35.4\n)\n", m)
        self.assertIn("\tk8s.io/api => k8s.io/api v0.35.4\n", m)
        self.assertNotIn("kwok", m)
        self.assertNotIn("etcd", m)
        ld = gobuild.kube_ldflags("NOW", False, "v1.35.4")
        self.assertIn("-X k8s.io/component-base/version.gitVersion=v1.35.4", ld)
        self.assertIn("-X k8s.io/component-base/version.gitMinor=35", ld)
        self.assertIn("-X k8s.io/client-go/pkg/version.gitVersion=v1.35.4", ld)

    def test_bundle_argument(self) -> None:
        self.assertEqual(cli.parser().parse_args(["bundle"]).which, "all")
        self.assertEqual(cli.parser().parse_args(["bundle", "previous"]).which, "previous")
        with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(SystemExit):
            cli.parser().parse_args(["bundle", "v1.35.4"])

    def test_apt_depends_output(self) -> None:
        self.assertEqual(debs.parse_depends("b\na\n  Depends: c\n<virt>\na\n"), ["a", "b"])

    def test_debian_mirror_from_sources(self) -> None:
        one = "deb [arch=amd64] http://m.example/debian/ bookworm main\n"
        deb822 = "Types: deb\nURIs: http://n.example/debian\nSuites: bookworm bookworm-updates\n"
        self.assertEqual(rootfs.mirror_from_sources([one]), "http://m.example/debian")
        self.assertEqual(rootfs.mirror_from_sources(["deb http://x/ trixie main\n", deb822]), "http://n.example/debian")
        self.assertIsNone(rootfs.mirror_from_sources(["deb http://x/ trixie main\n"]))
        self.assertTrue(rootfs.sources_list("http://m/debian").endswith("deb http://m/debian-security bookworm-security main\n"))


# kube-network-policies v0.8.0 around its three nft queue expressions (pkg/networkpolicy/{controller,dnsagent}.go)
KNP_CONTROLLER = """package networkpolicy

func (c *Controller) syncNFTablesRules(ctx context.Context) error {
	queue := &expr.Queue{Num: uint16(c.config.QueueID)}
	if c.config.FailOpen {
		queue.Flag = expr.QueueFlagBypass
	}
	nft.AddRule(&nftables.Rule{Exprs: []expr.Any{&expr.Counter{}, queue}})
	return nil
}

func (c *Controller) syncNFTablesRulesBug1766(ctx context.Context) error {
	queue := &expr.Queue{Num: uint16(c.config.QueueID)}
	if c.config.FailOpen {
		queue.Flag = expr.QueueFlagBypass
	}
	nft.AddRule(&nftables.Rule{Exprs: []expr.Any{&expr.Counter{}, queue}})
	return nil
}
"""
KNP_DNSAGENT = """package networkpolicy

func (n *DomainCache) syncRules() error {
	nft.AddRule(&nftables.Rule{
		Exprs: []expr.Any{
			&expr.Counter{},
			&expr.Queue{Num: uint16(n.nfQueueID), Flag: expr.QueueFlagBypass},
		},
	})
	return nil
}
"""
CONTROLLER_GO = "pkg/networkpolicy/controller.go"
DNSAGENT_GO = "pkg/networkpolicy/dnsagent.go"


class GoEnvTest(unittest.TestCase):
    """The build environment's CPU settings (gobuild.go_env): defaults the caller's environment overrides."""

    def env(self, outer: dict[str, str], extra: dict[str, str] | None = None) -> dict[str, str]:
        with mock.patch.dict(os.environ, outer, clear=True):
            return gobuild.go_env(extra)

    def test_defaults(self) -> None:
        e = self.env({"PATH": "/bin"})
        self.assertEqual((e["GOGC"], e["GOMEMLIMIT"]), ("400", "3GiB"))
        self.assertEqual(e["GOFLAGS"], "-buildvcs=false -mod=mod -gcflags=all=-dwarf=false")

    def test_the_callers_settings_win(self) -> None:
        e = self.env({"PATH": "/bin", "GOGC": "100", "GOFLAGS": "-gcflags=-N"})
        self.assertEqual(e["GOGC"], "100")
        self.assertEqual(e["GOFLAGS"], "-gcflags=-N -buildvcs=false -mod=mod")

    def test_extra_goflags_keep_the_compile_flag(self) -> None:
        e = self.env({"PATH": "/bin"}, {"GOFLAGS": "-buildvcs=false", "GOBIN": "/x"})
        self.assertEqual(e["GOFLAGS"], "-buildvcs=false -gcflags=all=-dwarf=false")


class NetpolPatchTest(unittest.TestCase):
    """The NFQUEUE patch of kube-network-policies (addons.KNP_QUEUE_PATCHES): exact code, exact counts."""

    def test_controller_queues_keep_number_and_fail_open_flag(self) -> None:
        got = addons.netpol_patch(CONTROLLER_GO, KNP_CONTROLLER)
        self.assertNotIn("&expr.Queue", got)
        self.assertEqual(got.count("\tqueueSpec := expr.Queue{Num: uint16(c.config.QueueID)}\n"
                                   "\tif c.config.FailOpen {\n\t\tqueueSpec.Flag = expr.QueueFlagBypass\n\t}\n"
                                   "\tqueue := xtNFQueue(queueSpec) // selfhost test bed:"), 2)
        self.assertEqual(got.count("[]expr.Any{&expr.Counter{}, queue}"), 2)  # the rules are untouched

    def test_dnsagent_queue_keeps_number_and_bypass(self) -> None:
        got = addons.netpol_patch(DNSAGENT_GO, KNP_DNSAGENT)
        self.assertIn("\t\t\txtNFQueue(expr.Queue{Num: uint16(n.nfQueueID), Flag: expr.QueueFlagBypass}), //", got)
        self.assertNotIn("&expr.Queue", got)

    def test_other_files_are_left_alone(self) -> None:
        self.assertEqual(addons.netpol_patch("pkg/networkpolicy/other.go", KNP_DNSAGENT), KNP_DNSAGENT)

    def test_code_found_a_different_number_of_times_is_refused(self) -> None:
        one = KNP_CONTROLLER.split("func (c *Controller) syncNFTablesRulesBug1766")[0]
        for rel, text in ((CONTROLLER_GO, one), (CONTROLLER_GO, KNP_CONTROLLER + KNP_CONTROLLER.split("\n", 2)[2]),
                          (CONTROLLER_GO, KNP_CONTROLLER.replace("if c.config.FailOpen {", "if c.config.FailOpen() {")),
                          (DNSAGENT_GO, KNP_DNSAGENT.replace("n.nfQueueID", "n.queueID")),
                          (DNSAGENT_GO, KNP_DNSAGENT.replace("\t\t\t&expr.Queue", "\t\t&expr.Queue"))):
            with self.assertRaises(TestbedError, msg=text):
                addons.netpol_patch(rel, text)

    def write_module(self, root: str, files: dict[str, str]) -> None:
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)

    def test_tree_is_patched_and_gets_the_helper(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            self.write_module(d, {CONTROLLER_GO: KNP_CONTROLLER, DNSAGENT_GO: KNP_DNSAGENT,
                                  "pkg/networkpolicy/controller_test.go": "var q = &expr.Queue{Num: 1}\n"})
            addons.netpol_patch_tree(d)
            with open(os.path.join(d, addons.KNP_HELPER)) as f:
                helper = f.read()
            self.assertIn("package networkpolicy\n", helper)
            self.assertIn('return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}', helper)
            self.assertEqual(addons.netpol_queue_uses(d), [])  # the _test.go file does not count
            with self.assertRaises(TestbedError):  # a second patch of the same tree
                addons.netpol_patch_tree(d)

    def test_tree_with_another_queue_expression_is_refused(self) -> None:
        for extra in ("\tq := &expr.Queue{Num: 7}\n", "\tvar q *expr.Queue\n", "\tq := new(expr.Queue)\n"):
            with tempfile.TemporaryDirectory() as d:
                self.write_module(d, {CONTROLLER_GO: KNP_CONTROLLER, DNSAGENT_GO: KNP_DNSAGENT,
                                      "pkg/other/x.go": "package other\n\nfunc f() {\n%s}\n" % extra})
                with self.assertRaises(TestbedError) as cm:
                    addons.netpol_patch_tree(d)
                self.assertIn("pkg/other/x.go:4", str(cm.exception))

    def test_tree_without_a_patched_file_is_refused(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            self.write_module(d, {CONTROLLER_GO: KNP_CONTROLLER, "pkg/dns/dnsagent.go": KNP_DNSAGENT})
            with self.assertRaises(TestbedError):
                addons.netpol_patch_tree(d)


TRAEFIK_GOMOD = """module github.com/traefik/traefik/v3

go 1.25.0

require github.com/abbot/go-http-auth v0.0.0-00010101000000-000000000000 // No tag on the repo.

// Containous forks
replace (
	github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e
	github.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59
	github.com/mailgun/minheap => github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595
)

// ambiguous import: found package github.com/tencentcloud/... in multiple modules
exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible
"""


class TraefikWrapperTest(unittest.TestCase):
    def test_replaces_and_excludes_are_copied(self) -> None:
        m = addons.traefik_wrapper_gomod(TRAEFIK_GOMOD)
        self.assertTrue(m.startswith("module selfhost.test/traefikbuild\n\ngo 1.25.0\n\n"
                                     "require github.com/traefik/traefik/v3 v3.6.12\n\nreplace (\n"), m)
        self.assertIn("\tgithub.com/mailgun/minheap => github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595\n)",
                      m)
        self.assertTrue(m.endswith("exclude (\n\tgithub.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible\n)\n"))
        blk = TRAEFIK_GOMOD.replace("exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible",
                                    "exclude (\n\ta v1.0.0\n\tb v2.0.0 // c\n)")
        self.assertEqual(addons.traefik_directives(blk)[1], ["a v1.0.0", "b v2.0.0"])

    def test_a_changed_shape_is_refused(self) -> None:
        minheap = "\tgithub.com/mailgun/minheap => github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595\n"
        bad = {
            "two replaces": TRAEFIK_GOMOD.replace(minheap, ""),
            "four replaces": TRAEFIK_GOMOD.replace(minheap, minheap + "\tx/y => x/z v1.0.0\n"),
            "a local replace": TRAEFIK_GOMOD.replace(minheap, "\tgithub.com/traefik/traefik/dynamic/ext => ./pkg/ext\n"),
            "a one-line replace too": TRAEFIK_GOMOD + "replace a/b => a/c v1.0.0\n",
            "no exclude": TRAEFIK_GOMOD.split("// ambiguous")[0],
            "no replace": TRAEFIK_GOMOD.split("// Containous")[0],
        }
        for name, gomod in bad.items():
            with self.assertRaises(TestbedError, msg=name):
                addons.traefik_directives(gomod)


# The lines TRAEFIK_PATCHES change, as traefik v3.6.12 has them (shortened around them).
TRAEFIK_ACME_GO = """package acme

import (
	"errors"

	"github.com/go-acme/lego/v4/challenge"
	"github.com/go-acme/lego/v4/providers/dns"
)

func (p *Provider) getClient() error {
	if p.DNSChallenge != nil && len(p.DNSChallenge.Provider) > 0 {
		var provider challenge.Provider
		provider, err = dns.NewDNSChallengeProviderByName(p.DNSChallenge.Provider)
		if err != nil {
			return nil, err
		}
	}
	return errors.New("x")
}
"""
TRAEFIK_STATIC_GO = """package static

import (
	"github.com/traefik/traefik/v3/pkg/provider/docker"
	"github.com/traefik/traefik/v3/pkg/provider/ecs"
)

type Providers struct {
	Docker                 *docker.Provider               `description:"Enables Docker provider." json:"docker,omitempty"`
	Ecs                    *ecs.Provider                  `description:"Enables AWS ECS provider." json:"ecs,omitempty" export:"true"`
}
"""
TRAEFIK_AGGREGATOR_GO = """package aggregator

func NewProviderAggregator(conf static.Providers) *ProviderAggregator {
	if conf.Ecs != nil {
		p.quietAddProvider(conf.Ecs)
	}

	if conf.Consul != nil {
		p.quietAddProvider(conf.Consul)
	}
}
"""


class TraefikSlimTest(unittest.TestCase):
    FILES = {"pkg/provider/acme/provider.go": TRAEFIK_ACME_GO,
             "pkg/config/static/static_config.go": TRAEFIK_STATIC_GO,
             "pkg/provider/aggregator/aggregator.go": TRAEFIK_AGGREGATOR_GO}

    def tree(self, d: str, files: dict[str, str]) -> None:
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            with open(os.path.join(d, rel), "w") as f:
                f.write(text)

    def read(self, d: str, rel: str) -> str:
        with open(os.path.join(d, rel)) as f:
            return f.read()

    def test_dns_providers_and_ecs_are_cut_out(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            self.tree(d, self.FILES)
            self.assertEqual(len(gobuild.go_imports_of(d, addons.TRAEFIK_DROPPED_IMPORTS)), 2)
            gobuild.patch_source("traefik", d, addons.TRAEFIK_PATCHES)
            self.assertEqual(gobuild.go_imports_of(d, addons.TRAEFIK_DROPPED_IMPORTS), [])
            acme = self.read(d, "pkg/provider/acme/provider.go")
            self.assertIn('\t\tprovider, err = nil, errors.New("DNS-01 challenge provider " + p.DNSChallenge.Provider + '
                          '": selfhost test bed: built without lego\'s DNS-01 providers")\n', acme)
            self.assertIn('\t"github.com/go-acme/lego/v4/challenge"\n)', acme)
            static = self.read(d, "pkg/config/static/static_config.go")
            self.assertNotIn("ecs", static)
            self.assertIn("\tDocker                 *docker.Provider", static)
            self.assertEqual(self.read(d, "pkg/provider/aggregator/aggregator.go"),
                             TRAEFIK_AGGREGATOR_GO.replace("\tif conf.Ecs != nil {\n\t\tp.quietAddProvider(conf.Ecs)\n\t}\n", ""))

    def test_a_changed_or_missing_file_is_refused(self) -> None:
        changed = {
            "the call renamed": ("pkg/provider/acme/provider.go", TRAEFIK_ACME_GO.replace(
                "NewDNSChallengeProviderByName", "NewProviderByName")),
            "the field twice": ("pkg/config/static/static_config.go", TRAEFIK_STATIC_GO.replace(
                "}\n", "\tEcs                    *ecs.Provider `json:\"ecs2\"`\n}\n")),
            "a file gone": ("pkg/provider/aggregator/aggregator.go", None),
        }
        for what, (rel, text) in changed.items():
            with self.subTest(what), tempfile.TemporaryDirectory() as d:
                files = dict(self.FILES)
                if text is None:
                    del files[rel]
                else:
                    files[rel] = text
                self.tree(d, files)
                with self.assertRaises(TestbedError) as cm:
                    gobuild.patch_source("traefik", d, addons.TRAEFIK_PATCHES)
                self.assertIn(rel, str(cm.exception))


class TofuSlimTest(unittest.TestCase):
    def test_backends_and_key_providers_are_cut_out_and_the_rest_kept(self) -> None:
        import harness
        patches, dropped = clis.tofu_patches()
        with tempfile.TemporaryDirectory() as d:
            for rel, text in harness.TOFU_FILES.items():
                harness.write(os.path.join(d, rel), text)
            self.assertEqual(len(gobuild.go_imports_of(d, dropped)), 12)
            gobuild.patch_source("OpenTofu", d, patches)
            self.assertEqual(gobuild.go_imports_of(d, dropped), [])
            with open(os.path.join(d, "internal/backend/init/init.go")) as f:
                init = f.read()
            for kept in ('backendLocal "github.com/opentofu/opentofu/internal/backend/local"',
                         '"local":      func(enc encryption.StateEncryption) backend.Backend { return backendLocal.New(enc) },',
                         '"http":       func(enc encryption.StateEncryption) backend.Backend { return backendHTTP.New(enc) },'):
                self.assertIn(kept, init)
            self.assertNotIn("backendS3", init)
            with open(os.path.join(d, "internal/encryption/default_registry.go")) as f:
                reg = f.read()
            self.assertIn("RegisterKeyProvider(pbkdf2.New())", reg)
            self.assertNotIn("aws_kms", reg)
            # a second run finds nothing to patch: refused
            with self.assertRaises(TestbedError):
                gobuild.patch_source("OpenTofu", d, patches)


class BundleImagesTest(unittest.TestCase):
    def test_add_on_images(self) -> None:
        refs = dict((fn[:-4], ref) for ref, fn in images.images_list())
        self.assertEqual(refs["traefik"], "docker.io/library/traefik:v3.6.12")
        self.assertEqual(refs["kube-network-policies"], "registry.k8s.io/networking/kube-network-policies:v0.8.0")
        self.assertEqual(refs["pebble-challtestsrv"], "ghcr.io/letsencrypt/pebble-challtestsrv:v2.10.1")
        self.assertEqual(refs["metrics-server"], "registry.k8s.io/metrics-server/metrics-server:v0.8.0")
        self.assertEqual(images.IMAGE_SPEC["traefik"][1], ["/usr/local/bin/traefik"])
        # as upstream: no entrypoint, CMD ["/bin/netpol"] (its manifests pass /bin/netpol as args[0])
        self.assertEqual((images.IMAGE_SPEC["kube-network-policies"][1], images.IMAGE_CMD["kube-network-policies"]),
                         (None, ["/bin/netpol"]))
        self.assertEqual(images.IMAGE_SPEC["pebble-challtestsrv"][1], ["/usr/bin/pebble-challtestsrv"])
        self.assertLessEqual(set(images.IMAGE_CMD), set(images.IMAGE_SPEC))

    def test_base_layer_knows_the_nonroot_user(self) -> None:
        self.assertIn("nonroot:x:65532:65532:", bundle.BASE_PASSWD)
        self.assertIn("nonroot:x:65532:\n", bundle.BASE_GROUP)


class PreviousBundleTest(unittest.TestCase):
    """The previous release's bundle, assembled from fake parts and a fake current bundle."""

    def test_previous_release_images_follow_kubeadm_v1_35(self) -> None:
        refs = dict((fn[:-4], ref) for ref, fn in images.images_list(images.PREVIOUS))
        self.assertEqual(refs["kube-apiserver"], "registry.k8s.io/kube-apiserver:v1.35.4")
        self.assertEqual(refs["kube-proxy"], "registry.k8s.io/kube-proxy:v1.35.4")
        self.assertEqual(refs["etcd"], "registry.k8s.io/etcd:3.6.6-0")
        self.assertEqual(refs["coredns"], "registry.k8s.io/coredns/coredns:v1.13.1")
        self.assertEqual(refs["pause"], "registry.k8s.io/pause:3.10.1")
        cur = dict((fn[:-4], ref) for ref, fn in images.images_list())
        self.assertEqual([n for n in refs if refs[n] != cur[n]], list(images.RELEASE_IMAGES))
        self.assertEqual(BUNDLE_PREVIOUS_VERSION, "%s-3+%s" % (K8S_PREVIOUS_VERSION, BUNDLE_VERSION))
        self.assertEqual(K3S_PREVIOUS_VERSION, "v1.35.4+k3s1")

    def test_assembly(self) -> None:
        import harness
        with tempfile.TemporaryDirectory() as tmp, using(cfg_for(XDG_CACHE_HOME=tmp + "/cache")):
            parts = {}
            for name, files in (("release", ["bin/" + b for b in kubernetes.RELEASE_BINS]), ("etcd", ["bin/etcd"]),
                                ("coredns", ["coredns"]), ("smallbins", ["echo", "pause"])):
                for f in files:
                    harness.write(os.path.join(tmp, name, f), "fake %s/%s\n" % (name, f), 0o755)
                parts[name] = os.path.join(tmp, name)
            for tag, pkgs in (("node", ["containerd"]), ("image", ["busybox-static", "iptables", "libc6"]),
                              ("restic", ["restic"])):
                harness.write(os.path.join(tmp, "debs-" + tag, "packages"), "\n".join(pkgs) + "\n")
            cur = os.path.join(tmp, "cur")
            shared = ["kubernetes/systemd/kubelet.service", "containerd/bin/ctr", "runc/runc.amd64", "cni/bin/bridge",
                      "debs/runc_1_amd64.deb", "manifests/kube-flannel.yml", "k3s/k3s"]
            # what the stand-in embeds besides the release's kubelet and kubectl
            shared += ["containerd/bin/containerd", "containerd/bin/containerd-shim-runc-v2"] + [
                "cni/bin/" + p for p in K3S_CNI_PLUGINS if p != "bridge"]
            for f in shared:
                harness.write(os.path.join(cur, f), "current " + f)
            listing = []
            for i, (ref, fn) in enumerate(images.images_list()):
                harness.write(os.path.join(cur, "images", fn), "image " + ref)
                listing.append("%s\t%s\tsha256:%064d\n" % (ref, fn, i))
            harness.write(os.path.join(cur, "images", "images.txt"), "".join(listing))
            harness.write(os.path.join(cur, "MANIFEST.json"), '{"bundle": "%s"}' % BUNDLE_VERSION)
            dst = os.path.join(tmp, "prev")
            os.makedirs(dst)
            rec = harness.Recorder(tmp)   # `go build` of the stand-in: recorded, a fake stub written
            with mock.patch.object(bundle, "bundle_dir", lambda: cur), \
                    mock.patch.object(kubernetes, "kube_release_dir", lambda v: parts["release"]), \
                    mock.patch.object(kubernetes, "etcd_dir", lambda v: parts["etcd"]), \
                    mock.patch.object(gobuild, "go_install_dir", lambda c, v, p: parts[c]), \
                    mock.patch.object(addons, "small_bins_dir", lambda: parts["smallbins"]), \
                    mock.patch.object(addons, "coredns_dir", lambda v: parts["coredns"]), \
                    mock.patch.object(debs, "debs_dir", lambda tag, p, closure: os.path.join(
                        tmp, "debs-" + {"k8s-node": "node", "k8s-image-base": "image",
                                        "k8s-image-restic": "restic"}[tag])), \
                    mock.patch.object(debs, "deb_unpack", harness._fake_deb_unpack), \
                    mock.patch.object(gobuild, "need_go", lambda: None), \
                    mock.patch.object(proc, "run", rec.run), \
                    mock.patch.object(proc, "log", lambda *a: None):
                bundle.build_previous_bundle(dst)
            bd = os.path.join(dst, "kubernetes", "bin", "linux", "amd64")
            self.assertEqual(sorted(n for n in os.listdir(bd) if not n.endswith(".sha256")), sorted(
                kubernetes.RELEASE_BINS + ("etcd",)))
            with open(os.path.join(bd, "kubeadm")) as f:
                self.assertEqual(f.read(), "fake release/bin/kubeadm\n")
            for f in shared:
                if f.startswith("k3s/"):   # its own stand-in, not the current release's
                    self.assertFalse(os.path.samefile(os.path.join(dst, f), os.path.join(cur, f)), f)
                else:
                    self.assertTrue(os.path.samefile(os.path.join(dst, f), os.path.join(cur, f)), f)
            # the previous stand-in: built from the same source with the previous release's version and images ...
            builds = [c["cmd"] for c in rec.calls if c["cmd"][:2] == ["go", "build"]]
            self.assertEqual(len(builds), 1, builds)
            ld = builds[0][builds[0].index("-ldflags") + 1].split()
            refs = dict((fn[:-4], ref) for ref, fn in images.images_list(images.PREVIOUS))
            for want in ("main.version=v1.35.4+k3s1", "main.apiserverImage=" + refs["kube-apiserver"],
                         "main.etcdImage=registry.k8s.io/etcd:3.6.6-0", "main.pauseImage=registry.k8s.io/pause:3.10.1",
                         "main.proxyImage=registry.k8s.io/kube-proxy:v1.35.4",
                         "main.corednsImage=registry.k8s.io/coredns/coredns:v1.13.1"):
                self.assertIn(want, ld)
            # ... and embeds the previous release's kubelet and kubectl, cached under its own version
            parts_k3s = [d for d in os.listdir(os.path.join(tmp, "cache", "selfhost-testbed"))
                         if d.startswith("k3s-standin-") and not d.endswith((".tmp", ".lock"))]
            self.assertEqual(len(parts_k3s), 1, parts_k3s)
            self.assertTrue(parts_k3s[0].startswith("k3s-standin-v1.35.4+k3s1-4-"), parts_k3s)
            import tarfile
            with open(os.path.join(dst, "k3s", "k3s"), "rb") as f:
                blob = f.read()
            off, size = int(blob[-96:-80], 16), int(blob[-80:-64], 16)
            with tarfile.open(fileobj=io.BytesIO(blob[off:off + size])) as t:
                kubelet = t.extractfile("bin/kubelet")
                assert kubelet is not None
                self.assertEqual(kubelet.read(), b"fake release/bin/kubelet\n")
                self.assertEqual(sorted(t.getnames()), sorted("bin/" + n for _, n in k3s_standin.embedded_files(dst)))
            with open(os.path.join(dst, "k3s", "sha256sum-amd64.txt")) as f:
                self.assertEqual(f.read(), "%s  k3s\n" % cache.sha256_file(os.path.join(dst, "k3s", "k3s")))
            with open(os.path.join(dst, "images", "images.txt")) as f:
                rows = [line.rstrip("\n").split("\t") for line in f]
            self.assertEqual([(r, fn) for r, fn, _ in rows], images.images_list(images.PREVIOUS))
            for ref, fn, dg in rows:
                same = os.path.samefile(os.path.join(dst, "images", fn), os.path.join(cur, "images", fn))
                self.assertEqual(same, fn[:-4] not in images.RELEASE_IMAGES, fn)
                if same:
                    self.assertIn("%s\t%s\t%s\n" % (ref, fn, dg), listing)
                else:
                    self.assertTrue(dg.startswith("sha256:") and len(dg) == 71, dg)
            with open(os.path.join(dst, "MANIFEST.json")) as f:
                m = json.load(f)
            self.assertEqual((m["bundle"], m["kubernetes"], m["etcd"], m["coredns"], m["shares_files_with"]),
                             (BUNDLE_PREVIOUS_VERSION, "v1.35.4", "v3.6.6", "v1.13.1", BUNDLE_VERSION))
            self.assertEqual(m["k3s"], "v1.35.4+k3s1 (stand-in 4, see testbed/README.md)")
            with open(os.path.join(dst, "SHA256SUMS")) as f:
                summed = sorted(line.split("  ", 1)[1].rstrip("\n") for line in f)
            files = sorted(os.path.relpath(os.path.join(r, n), dst) for r, _, fs in os.walk(dst) for n in fs
                           if not n.endswith(".sha256") and n != "SHA256SUMS")
            self.assertEqual(summed, files)


class ErrorsTest(unittest.TestCase):
    def test_run_refuses_a_string(self) -> None:
        with self.assertRaises(TypeError):
            proc.run("echo hi")

    def test_failed_command_carries_its_log(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            lf = os.path.join(d, "x.log")
            with self.assertRaises(TestbedError) as e, contextlib.redirect_stderr(io.StringIO()):
                proc.run([sys.executable, "-c", "print('why'); raise SystemExit(3)"], logfile=lf)
            self.assertEqual(e.exception.logfile, lf)
            self.assertIn("exit 3", e.exception.message)

    def test_error_in_a_worker_thread_is_reported_by_main(self) -> None:
        """A TestbedError raised in a worker thread ends the command with exit 1 and the error on stderr."""
        def failing(a: Any) -> None:
            import concurrent.futures

            def work() -> None:
                self.assertIsNot(threading.current_thread(), threading.main_thread())
                raise TestbedError("the worker failed")
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pool.submit(work).result()
        err = io.StringIO()
        with mock.patch.object(cli, "cmd_env", failing), contextlib.redirect_stderr(err), \
                mock.patch.dict(os.environ, {"SELFHOST_TESTBED_INSTANCE": "0"}):
            saved = config._current
            try:
                with self.assertRaises(SystemExit) as e:
                    cli.main(["env"])
            finally:
                config._current = saved
        self.assertEqual(e.exception.code, 1)
        self.assertIn("testbed: ERROR: the worker failed", err.getvalue())


if __name__ == "__main__":
    unittest.main()
