//! Which `version` changes a cluster can take in place: kubeadm's skew
//! policy (one minor up at a time, or any patch up; never down). Pure: the
//! resource asks at plan time and refuses the rest at `version`.

use super::spec::Version;

/// An allowed change of Kubernetes release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upgrade {
    /// Same minor, a later patch (`v1.36.1` → `v1.36.3`).
    Patch,
    /// The next minor (`v1.35.4` → `v1.36.3`).
    Minor,
}

/// Whether a cluster running `from` can be upgraded in place to `to`;
/// `Ok(None)` when they are the same release. The error says why not and
/// what to do instead.
pub fn check(from: &Version, to: &Version) -> Result<Option<Upgrade>, String> {
    let key = |v: &Version| (v.major, v.minor, v.patch);
    if key(from) == key(to) {
        return Ok(None);
    }
    if key(to) < key(from) {
        return Err(format!(
            "{to} is older than the {from} the cluster runs: Kubernetes does not support downgrades (etcd's data and the API objects may already be in the newer form). Keep `version` at {from}, or restore the cluster from a backup taken before the upgrade."
        ));
    }
    if to.major != from.major {
        return Err(format!(
            "{from} → {to} changes the major version; this provider upgrades within one major version only."
        ));
    }
    match to.minor - from.minor {
        0 => Ok(Some(Upgrade::Patch)),
        1 => Ok(Some(Upgrade::Minor)),
        n => Err(format!(
            "{from} → {to} skips {} minor version{}: kubeadm's version skew policy upgrades one minor at a time. Upgrade to the latest v{}.{}.x first, apply, then to {to}.",
            n - 1,
            if n == 2 { "" } else { "s" },
            from.major,
            from.minor + 1
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("version")
    }

    #[test]
    fn one_minor_up_or_any_patch_up_and_nothing_else() {
        assert_eq!(check(&v("v1.36.3"), &v("v1.36.3")), Ok(None));
        assert_eq!(check(&v("v1.36.1"), &v("v1.36.3")), Ok(Some(Upgrade::Patch)));
        assert_eq!(check(&v("v1.35.4"), &v("v1.36.3")), Ok(Some(Upgrade::Minor)));
        assert_eq!(check(&v("v1.35.4"), &v("v1.36.0")), Ok(Some(Upgrade::Minor)));
        let down = check(&v("v1.36.3"), &v("v1.35.4")).expect_err("downgrade");
        assert!(down.contains("does not support downgrades"), "{down}");
        let patch_down = check(&v("v1.36.3"), &v("v1.36.1")).expect_err("downgrade");
        assert!(patch_down.contains("older"), "{patch_down}");
        let skip = check(&v("v1.34.2"), &v("v1.36.3")).expect_err("skip");
        assert!(
            skip.contains("skips 1 minor version:") && skip.contains("v1.35.x first"),
            "{skip}"
        );
        let skip2 = check(&v("v1.33.0"), &v("v1.36.3")).expect_err("skip");
        assert!(skip2.contains("skips 2 minor versions"), "{skip2}");
        assert!(check(&v("v1.36.3"), &v("v2.0.0")).is_err());
    }
}
