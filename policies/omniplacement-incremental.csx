// omniplacement-incremental: OmniPlacement in small, frequent steps (few copies per rebalance)
//
// The idea: the adaptive method with a small move budget per rebalance and a low trigger, meant to be called
// often (every 10 to 25 steps): each call fixes the worst layers by a handful of swaps and re-replications, so the
// weight copies of one rebalance fit in a step's idle bandwidth, as OmniPlacement's layer-pipelined scheduling does.
// No anchored rebuilds: every change is an incremental operation that pays for its copies on its own.
//
// Knobs: move-budget (share of all slots one call may rewrite), move-cost, trigger and release; the rest as
// omniplacement.csx.
//
// When to use: the relocation path is slow or contended (PCIe, a busy NVLink), or latency spikes from large
// rebalances are unacceptable.
//
// @option name = omniplacement-incremental
// @option move-budget = 0.03
// @option move-cost = 0.002
// @option trigger = 1.02
// @option release = 1.01
// @option rebuild-above = 100
// @option scenarios = 2
#load "lib/omniplacement.lib.csx"

return new OmniPlacementPolicy(Options);
