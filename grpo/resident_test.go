package grpo

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/trajectory"
)

// residentVariants cover every train.onnx pass layout and accumulator:
// one pass over all adapters (dual, single with its tie), one pass per role
// accumulating only that role's adapters (two-agent, strict isolation).
var residentVariants = []struct{ name, variant, isolation string }{
	{"dual", VariantDual, IsolationDefault},
	{"single", VariantSingle, IsolationDefault},
	{"two-agent", VariantTwoAgent, IsolationDefault},
	{"dual-strict", VariantDual, IsolationStrict},
}

// residentConfig makes several micro-batches per mini-batch (gradients are
// summed across calls) and two updates per step, with the KL term and the
// old log-probs recomputed, so that every graph and buffer swap runs.
func residentConfig(variant, isolation string) Config {
	cfg := toyTrainConfig()
	cfg.Variant, cfg.Isolation = variant, isolation
	cfg.Prompts, cfg.Group, cfg.MiniBatch, cfg.MicroBatch = 2, 4, 4, 2
	cfg.KLCoef, cfg.RecomputeOldLP = 0.05, true
	return cfg
}

// TestResidentStepBitIdentical runs the same GRPO steps with host tensors
// (every adapter, gradient and moment copied through onnxruntime_go at
// every call, the path before device residency) and with resident tensors,
// from the same rollouts (the real policy sampled by decode.onnx): metrics,
// adapters and AdamW moments must be equal bit for bit.
func TestResidentStepBitIdentical(t *testing.T) {
	dir := toyModel(t)
	for _, v := range residentVariants {
		t.Run(v.name, func(t *testing.T) {
			cfg := residentConfig(v.variant, v.isolation)
			open := func(host bool) *Trainer {
				tr, err := New(Options{Model: dir, Run: t.TempDir(), Config: cfg, Data: toyData(5),
					Roller: newToyRoller(t, dir, 8), Reward: lowTokenReward, HostTensors: host})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { tr.Close() })
				return tr
			}
			host, res := open(true), open(false)
			if host.res != nil || res.res == nil {
				t.Fatal("HostTensors did not select the path")
			}
			for step := 1; step <= 2; step++ {
				mh, err := host.Step(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				mr, err := res.Step(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if mh.RewardStd == 0 {
					t.Fatalf("step %d: all rewards equal: the update would be zero", step)
				}
				for _, f := range []struct {
					name string
					h, r float64
				}{{"loss", mh.Loss, mr.Loss}, {"grad_norm", mh.GradNorm, mr.GradNorm}, {"kl", *mh.KL, *mr.KL},
					{"ratio", mh.RatioMean, mr.RatioMean}, {"clip", mh.ClipFrac, mr.ClipFrac}, {"entropy", mh.Entropy, mr.Entropy},
					{"ratio_max_dev", mh.RatioMaxDev, mr.RatioMaxDev}, {"reward", mh.RewardMean, mr.RewardMean}} {
					if f.h != f.r {
						t.Errorf("step %d %s: host %v, resident %v", step, f.name, f.h, f.r)
					}
				}
				if mh.TrainPositions != mr.TrainPositions || mh.TrainCalls != mr.TrainCalls || mh.TrainPositions == 0 {
					t.Errorf("step %d: train positions/calls host %d/%d, resident %d/%d", step, mh.TrainPositions, mh.TrainCalls, mr.TrainPositions, mr.TrainCalls)
				}
				if mh.GradNorm == 0 {
					t.Fatalf("step %d: zero gradient norm: the comparison would be vacuous", step)
				}
			}
			hp, hm, hv, err := host.hostState()
			if err != nil {
				t.Fatal(err)
			}
			rp, rm, rv, err := res.hostState()
			if err != nil {
				t.Fatal(err)
			}
			init := map[string]*runtime.Tensor{}
			{
				fresh := open(true)
				init = fresh.params
			}
			moved := 0
			for _, n := range host.names {
				for _, c := range []struct {
					what string
					h, r *runtime.Tensor
				}{{"adapter", hp[n], rp[n]}, {"m", hm[n], rm[n]}, {"v", hv[n], rv[n]}} {
					if !slices.Equal(c.h.Bytes(), c.r.Bytes()) {
						t.Errorf("%s %s differs between the host and resident paths", c.what, n)
					}
				}
				if !slices.Equal(hp[n].Bytes(), init[n].Bytes()) {
					moved++
				}
			}
			if moved == 0 {
				t.Fatal("no adapter changed in two steps: the comparison would be vacuous")
			}
		})
	}
}

// replayRoller returns recorded rollouts: a roller that reads no adapter,
// so that the step's own transfers can be counted.
type replayRoller struct{ trajs []*trajectory.Trajectory }

func (r replayRoller) Rollout(context.Context, []eval.Example, int, map[string]*runtime.Tensor, uint64) ([]*trajectory.Trajectory, error) {
	return r.trajs, nil
}

func (r replayRoller) RolloutResident(context.Context, []eval.Example, int, map[string]*runtime.DeviceTensor, uint64) ([]*trajectory.Trajectory, error) {
	return r.trajs, nil
}

// TestResidentStepMovesNoState counts the bytes that cross between Go and
// ONNX Runtime during one GRPO step (runtime's transfer counters). With
// resident tensors only token ids, masks, positions, roles, per-token
// weights, advantages and log-probs, per-token statistics and scalars may
// cross: no adapter, gradient, moment or zero-adapter byte. The host path
// over the same rollouts crosses at least as much of each small tensor (it
// also reads back outputs the step does not use), plus the state at every
// call.
func TestResidentStepMovesNoState(t *testing.T) {
	dir := toyModel(t)
	for _, v := range residentVariants {
		t.Run(v.name, func(t *testing.T) {
			cfg := residentConfig(v.variant, v.isolation)
			roller := newToyRoller(t, dir, 8)
			pre, err := New(Options{Model: dir, Run: t.TempDir(), Config: cfg, Data: toyData(5), Roller: roller, Reward: lowTokenReward, HostTensors: true})
			if err != nil {
				t.Fatal(err)
			}
			ex, _ := pre.nextExamples(&State{Seed: cfg.Seed})
			trajs, err := roller.Rollout(context.Background(), ex, cfg.Group, pre.params, rolloutSeed(cfg.Seed, 0))
			pre.Close()
			if err != nil {
				t.Fatal(err)
			}
			count := func(host bool) (runtime.Transfers, Metrics) {
				tr, err := New(Options{Model: dir, Run: t.TempDir(), Config: cfg, Data: toyData(5),
					Roller: replayRoller{trajs}, Reward: lowTokenReward, HostTensors: host})
				if err != nil {
					t.Fatal(err)
				}
				defer tr.Close()
				runtime.ResetTransferStats()
				met, err := tr.Step(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return runtime.TransferStats(), met
			}
			hostT, mh := count(true)
			resT, mr := count(false)
			if mh.Loss != mr.Loss || mh.GradNorm != mr.GradNorm {
				t.Fatalf("loss/grad norm: host %v/%v, resident %v/%v", mh.Loss, mh.GradNorm, mr.Loss, mr.GradNorm)
			}
			small := map[string]bool{"input_ids": true, "attention_mask": true, "position_ids": true, "role_ids": true,
				"token_weights": true, "advantages": true, "old_logprobs": true, "ref_logprobs": true,
				"clip_low": true, "clip_high": true, "kl_coef": true, "entropy_coeff": true, "loss": true, "kl": true, "clipped": true,
				"ratio": true, "entropy": true, "logprobs": true, "nonfinite": true, "grad_norm": true,
				"step": true, "lr": true, "beta1": true, "beta2": true, "eps": true, "weight_decay": true, "max_grad_norm": true}
			var state int64
			for _, n := range pre.names {
				for _, p := range []string{"", "grad.", "m.", "v.", "new.", "new_m.", "new_v."} {
					state += hostT.ByName[p+n]
				}
			}
			for name, b := range resT.ByName {
				if !small[name] {
					t.Errorf("resident step: %d bytes of %s crossed between Go and ONNX Runtime", b, name)
				} else if name != "nonfinite" && b > hostT.ByName[name] {
					t.Errorf("resident step: %s crossed %d bytes, the host path only %d", name, b, hostT.ByName[name])
				}
			}
			if !slices.ContainsFunc(pre.names, func(n string) bool { return strings.Contains(n, "lora") }) || state == 0 {
				t.Fatalf("the host path moved no adapter state (%d bytes): the counters see nothing", state)
			}
			t.Logf("one step: resident %d bytes crossed; host path %d bytes, %d of them adapters, gradients and moments",
				resT.ToORT+resT.FromORT, hostT.ToORT+hostT.FromORT, state)
		})
	}
}
