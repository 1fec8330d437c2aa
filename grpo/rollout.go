package grpo

import (
	"context"
	"fmt"

	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/qa"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/trajectory"
)

// Roller produces rollouts with the current adapters: the agent loop in
// training, a toy policy in tests. It returns len(examples)·group
// trajectories, grouped: trajectories [i·group, (i+1)·group) answer
// examples[i]. The same seed and adapters must give the same rollouts.
// The adapters belong to the trainer and must not be modified.
type Roller interface {
	Rollout(ctx context.Context, examples []eval.Example, group int, adapters map[string]*runtime.Tensor, seed uint64) ([]*trajectory.Trajectory, error)
}

// ResidentRoller is a Roller that can read the adapters in place on the
// trainer's execution device (runtime.DeviceTensor inputs of a bound
// decoder), so that rollouts move no adapter between Go and ONNX Runtime.
// The trainer prefers it when its tensors are resident.
type ResidentRoller interface {
	Roller
	RolloutResident(ctx context.Context, examples []eval.Example, group int, adapters map[string]*runtime.DeviceTensor, seed uint64) ([]*trajectory.Trajectory, error)
}

// Reward scores one trajectory.
type Reward func(t *trajectory.Trajectory) float64

// EMReward is Search-R1's reward: 1 when the last <answer> of the response
// matches a gold answer after SQuAD normalization, else 0. A response
// without an answer scores 0.
func EMReward(t *trajectory.Trajectory) float64 {
	if t.Answer == "" {
		return 0
	}
	if qa.ExactMatch(t.Answer, t.Golden) {
		return 1
	}
	return 0
}

// checkRollouts verifies the Roller's contract.
func checkRollouts(trajs []*trajectory.Trajectory, prompts, group int) error {
	if len(trajs) != prompts*group {
		return fmt.Errorf("grpo: the roller returned %d trajectories for %d prompts × group %d", len(trajs), prompts, group)
	}
	for i, t := range trajs {
		if t == nil {
			return fmt.Errorf("grpo: rollout %d is nil", i)
		}
		if err := t.Check(); err != nil {
			return fmt.Errorf("grpo: rollout %d: %w", i, err)
		}
	}
	return nil
}
