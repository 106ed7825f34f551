# selfhost facts, format 1. POSIX sh (bash or dash), run as root. Prints ONE
# JSON document: a fixed skeleton whose every text is base64 (base64 -w0,
# coreutils), because minimal hosts have neither jq nor python. A field is
# left out when its file is absent, so "absent" and "empty" differ.
# stdin: the query, one "kind value" per line (pkg, user, sysctl, module, tz);
# /var/lib/selfhost/query (written by converge) adds what the manifest manages.
set +e
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# f runs at the end of pipelines (a subshell), so it cannot track a separator:
# every object starts with a dummy "_" member and f always writes a comma.
f() { printf ',"%s":"' "$1"; base64 -w0; printf '"'; }
ff() { [ -e "$2" ] && cat "$2" 2>/dev/null | f "$1"; }
fc() { n=$1; shift; out=$("$@" 2>&1); st=$?; printf '%s' "$out" | f "$n"; printf '%s' "$st" | f "$n.status"; }
printf '{"format":1,"t":{"_":""'
ff os_release /etc/os-release
uname -r | f kernel
uname -m | f arch
nproc 2>/dev/null | f cpus
ff meminfo /proc/meminfo
df -Pk / 2>/dev/null | f df_root
ff machine_id /etc/machine-id
ff hostname /proc/sys/kernel/hostname
ff etc_hostname /etc/hostname
ff etc_hosts /etc/hosts
[ -L /etc/localtime ] && readlink /etc/localtime | f localtime
ff etc_timezone /etc/timezone
ff swaps /proc/swaps
ff fstab /etc/fstab
ff modules_load /etc/modules-load.d/selfhost.conf
ff sysctl_conf /etc/sysctl.d/99-selfhost.conf
command -v sshd >/dev/null 2>&1 && fc sshd_t sshd -T
ff sshd_dropin /etc/ssh/sshd_config.d/00-selfhost.conf
ff sshd_config /etc/ssh/sshd_config
grep -ls '^#selfhost-disabled# ' /etc/ssh/sshd_config.d/*.conf | f sshd_disabled
command -v nft >/dev/null 2>&1 && fc nft nft list table inet selfhost
ff nft_file /etc/nftables.d/selfhost.nft
systemctl is-enabled selfhost-firewall.service 2>/dev/null | f firewall_unit
ff auto_upgrades /etc/apt/apt.conf.d/20auto-upgrades
ff containerd_config /etc/containerd/config.toml
systemctl is-active containerd.service 2>/dev/null | f containerd_active
systemctl is-active docker.service 2>/dev/null | f docker_active
grep '^Cap' /proc/self/status | f caps
ff modules_disabled /proc/sys/kernel/modules_disabled
[ -d "/lib/modules/$(uname -r)" ] && echo yes | f modules_dir
systemd-detect-virt --container 2>/dev/null | f container
ff pid1 /proc/1/comm
# sudo drops SSH_CONNECTION from the environment: look for it in the
# environment of the parent processes (the login shell has it).
conn=${SSH_CONNECTION:-}
p=$$
while [ -z "$conn" ] && [ "${p:-1}" -gt 1 ]; do
  conn=$(tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p' | head -n 1)
  p=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
done
printf '%s' "$conn" | f ssh_connection
ff manifest /var/lib/selfhost/host.json
command -v apt-get 2>/dev/null | f apt_get
printf '},"q":['
{ cat; [ -r /var/lib/selfhost/query ] && cat /var/lib/selfhost/query; } | sort -u | {
  sep0=''
  while read -r kind item; do
    # The query comes from validated values; refuse anything else anyway.
    case "$item" in '' | *[!A-Za-z0-9_./+-]* | *..* | /*) continue ;; esac
    case "$kind" in pkg | user | sysctl | module | tz) ;; *) continue ;; esac
    printf '%s{"k":"%s","i":"%s","f":{"_":""' "$sep0" "$kind" "$(printf '%s' "$item" | base64 -w0)"
    sep0=','
    case "$kind" in
    pkg) dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$item" </dev/null 2>/dev/null | f status ;;
    user)
      pw=$(getent passwd "$item" </dev/null)
      if [ -n "$pw" ]; then
        printf '%s' "$pw" | f passwd
        home=$(printf '%s' "$pw" | cut -d: -f6)
        ff authorized_keys "$home/.ssh/authorized_keys"
      fi
      ff sudoers "/etc/sudoers.d/selfhost-$item"
      ;;
    sysctl)
      p=/proc/sys/$(printf '%s' "$item" | tr './' '/.')
      ff value "$p"
      [ -w "$p" ] && echo yes | f writable
      ;;
    module)
      n=$(printf '%s' "$item" | tr - _)
      [ -d "/sys/module/$n" ] && echo yes | f loaded
      ;;
    tz) [ -f "/usr/share/zoneinfo/$item" ] && echo yes | f known ;;
    esac
    printf '}}'
  done
}
printf ']}\n'
