// Added by the selfhost test bed (testbed/selfhost_testbed/builds/addons.py, netpol_patch_tree) to the
// source of sigs.k8s.io/kube-network-policies; see testbed/README.md, "kube-network-policies carries an
// NFQUEUE patch".

package networkpolicy

import (
	"encoding/binary"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// xtNFQueue returns the rule expression that queues packets as q describes, as the xtables NFQUEUE target
// (revision 3, run by the kernel's nft_compat) instead of nftables' own queue expression: a kernel built
// without CONFIG_NFT_QUEUE that cannot load modules refuses the latter (ENOENT), and the controller then
// installs no queue rule at all, so nothing is enforced.
//
// The target's info is struct xt_NFQ_info_v3 {__u16 queuenum; __u16 queues_total; __u16 flags;}, native
// endian, padded to 8 bytes (XT_ALIGN). queues_total is 1 (what expr.Queue sends for its zero Total), and
// NFQ_FLAG_BYPASS (1) is set when q has expr.QueueFlagBypass: with no program listening on the queue the
// packet is accepted (fail open), as with the queue expression's bypass flag.
func xtNFQueue(q expr.Queue) *expr.Target {
	var flags uint16
	if q.Flag&expr.QueueFlagBypass != 0 {
		flags |= 1 // NFQ_FLAG_BYPASS
	}
	info := make(xt.Unknown, 8)
	binary.NativeEndian.PutUint16(info[0:], q.Num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	binary.NativeEndian.PutUint16(info[4:], flags)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}
