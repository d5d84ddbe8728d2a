package domain

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/decide"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
)

// Exercise is a scheduled exercise (tabletop, restore test) on a contract
// and, once held, its result.
type Exercise struct {
	ID           string                      `json:"id,omitzero"`
	ContractID   string                      `json:"contract_id,omitzero"`
	Customer     OrgID                       `json:"customer,omitzero"`
	Provider     OrgID                       `json:"provider,omitzero"`
	Kind         incidentsv1.ExerciseKind    `json:"kind,omitzero"`
	Title        string                      `json:"title,omitzero"`
	Scenario     string                      `json:"scenario,omitzero"`
	ScheduledFor time.Time                   `json:"scheduled_for,omitzero"`
	ScheduledBy  OrgID                       `json:"scheduled_by,omitzero"`
	Outcome      incidentsv1.ExerciseOutcome `json:"outcome,omitzero"`
	Summary      string                      `json:"summary,omitzero"`
	Findings     []string                    `json:"findings,omitzero"`
	PerformedAt  time.Time                   `json:"performed_at,omitzero"`
	Position     uint64                      `json:"position,omitzero"`
}

// ExerciseCommand is an instruction to an exercise.
type ExerciseCommand = decide.Command

// ScheduleExercise plans an exercise on a contract in force.
type ScheduleExercise struct {
	By
	ExerciseID   string
	Contract     Contract
	Kind         incidentsv1.ExerciseKind
	Title        string
	Scenario     string
	ScheduledFor time.Time
}

// RecordExerciseResult records how an exercise went (or that it was cancelled).
type RecordExerciseResult struct {
	By
	Outcome     incidentsv1.ExerciseOutcome
	Summary     string
	Findings    []string
	PerformedAt time.Time // zero means At
}

// DecideExercise checks an exercise command.
func DecideExercise(x Exercise, cmd ExerciseCommand) ([]proto.Message, error) {
	if decide.Missing(cmd) {
		return nil, invalid("command", "missing")
	}
	switch c := cmd.(type) {
	case *ScheduleExercise:
		k := c.Contract
		switch {
		case x.ID != "":
			return nil, fmt.Errorf("exercise %s: %w", x.ID, ErrAlreadyExists)
		case k.ID == "":
			return nil, NotFoundError{What: "contract"}
		case !k.IsParty(c.Org):
			return nil, fmt.Errorf("org %q: %w", c.Org, ErrNotParty)
		case !k.InForce || (!k.EndsAt.IsZero() && !c.At.Before(k.EndsAt)):
			return nil, fmt.Errorf("contract %s: %w", k.ID, ErrContractNotActive)
		case blank(c.ExerciseID):
			return nil, invalid("exercise_id", "must not be empty")
		case blank(c.Title):
			return nil, invalid("title", "must not be empty")
		case c.Kind == incidentsv1.ExerciseKind_EXERCISE_KIND_UNSPECIFIED || incidentsv1.ExerciseKind_name[int32(c.Kind)] == "":
			return nil, invalid("kind", "unknown exercise kind %d", c.Kind)
		case c.ScheduledFor.IsZero():
			return nil, invalid("scheduled_for", "must be set")
		}
		return one(&incidentsv1.ExerciseScheduled{
			ExerciseId: c.ExerciseID, ContractId: k.ID, CustomerOrgId: string(k.Customer), ProviderOrgId: string(k.Provider),
			Kind: c.Kind, Title: c.Title, Scenario: c.Scenario, ScheduledFor: timestamppb.New(c.ScheduledFor),
		}), nil
	case *RecordExerciseResult:
		if x.ID == "" {
			return nil, NotFoundError{What: "exercise"}
		}
		if c.Org == "" || (c.Org != x.Customer && c.Org != x.Provider) {
			return nil, fmt.Errorf("org %q: %w", c.Org, ErrNotParty)
		}
		at := c.PerformedAt
		if at.IsZero() {
			at = c.At
		}
		switch {
		case x.Outcome != incidentsv1.ExerciseOutcome_EXERCISE_OUTCOME_UNSPECIFIED:
			if x.Outcome == c.Outcome && x.Summary == c.Summary && slices.Equal(x.Findings, c.Findings) {
				return nil, nil
			}
			return nil, fmt.Errorf("%w: exercise %s has its result already", ErrWrongStatus, x.ID)
		case c.Outcome == incidentsv1.ExerciseOutcome_EXERCISE_OUTCOME_UNSPECIFIED || incidentsv1.ExerciseOutcome_name[int32(c.Outcome)] == "":
			return nil, invalid("outcome", "unknown outcome %d", c.Outcome)
		case at.After(c.At):
			return nil, invalid("performed_at", "must not be in the future")
		}
		return one(&incidentsv1.ExerciseResultRecorded{
			ExerciseId: x.ID, Outcome: c.Outcome, Summary: c.Summary, Findings: slices.Clone(c.Findings), PerformedAt: timestamppb.New(at),
		}), nil
	default:
		return nil, invalid("command", "unknown command %T", cmd)
	}
}

// EvolveExercise applies one event to an exercise.
func EvolveExercise(x Exercise, m proto.Message, meta Meta) Exercise {
	switch e := m.(type) {
	case *incidentsv1.ExerciseScheduled:
		x = Exercise{
			ID: e.GetExerciseId(), ContractID: e.GetContractId(), Customer: OrgID(e.GetCustomerOrgId()), Provider: OrgID(e.GetProviderOrgId()),
			Kind: e.GetKind(), Title: e.GetTitle(), Scenario: e.GetScenario(), ScheduledFor: e.GetScheduledFor().AsTime(), ScheduledBy: meta.Actor.Org,
		}
	case *incidentsv1.ExerciseResultRecorded:
		x.Outcome, x.Summary, x.Findings, x.PerformedAt = e.GetOutcome(), e.GetSummary(), slices.Clone(e.GetFindings()), e.GetPerformedAt().AsTime()
	default:
		return x
	}
	if meta.Position > x.Position {
		x.Position = meta.Position
	}
	return x
}

// ExerciseToProto maps an exercise to its API message.
func ExerciseToProto(x Exercise) *incidentsv1.Exercise {
	return &incidentsv1.Exercise{
		ExerciseId: x.ID, ContractId: x.ContractID, Kind: x.Kind, Title: x.Title, Scenario: x.Scenario,
		ScheduledFor: ts(x.ScheduledFor), ScheduledByOrgId: string(x.ScheduledBy), Outcome: x.Outcome, Summary: x.Summary,
		Findings: slices.Clone(x.Findings), PerformedAt: ts(x.PerformedAt), Position: x.Position,
	}
}
