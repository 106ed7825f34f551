"""selfhost_testbed — a test bed of real parts for terraform-provider-selfhost (`testbed/testbed`).

Modules, one concept each:
  config         Config: every setting that depends on the environment (instance, names, ports, dirs)
  versions       the versions of what is built, and the recipe versions that key the cache
  errors         TestbedError: what a failing step raises (also in worker threads)
  proc           logging, running commands, daemons (spawn/stop, pid files), waiting
  assets         the files under testbed/assets/ (Go sources, shell, units, manifests, configs)
  cache          the build cache: one directory per component and version, built once, file-locked
  gobuild        Go toolchain environment, wrapper modules, `go install` into the cache
  builds/        one module per built part: kubernetes, clis, addons, debs, oci, k3s_standin, bundle
  machine        root, Debian packages on this machine
  rootfs         the cached Debian rootfs of the hosts
  network        the bridge, its nftables rules, the apt proxy
  k8s_machine    machine sysctls and cgroup subtrees that k8s hosts need
  hosts          systemd-nspawn test hosts
  control_plane  PKI, kubeconfigs, etcd + kube-apiserver + controllers + kwok
  cli            the `testbed` command line
"""
