package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	"github.com/jsmplatform/jsm/services/incidents/domain"
)

const (
	exerciseID = "ex-1"
	tabletop   = incidentsv1.ExerciseKind_EXERCISE_KIND_TABLETOP
	restore    = incidentsv1.ExerciseKind_EXERCISE_KIND_RESTORE_TEST
	passed     = incidentsv1.ExerciseOutcome_EXERCISE_OUTCOME_PASSED
	findings   = incidentsv1.ExerciseOutcome_EXERCISE_OUTCOME_PASSED_WITH_FINDINGS
	cancelled  = incidentsv1.ExerciseOutcome_EXERCISE_OUTCOME_CANCELLED
)

func schedule(mods ...func(*domain.ScheduleExercise)) *domain.ScheduleExercise {
	c := &domain.ScheduleExercise{
		By: by(customer, base), ExerciseID: exerciseID, Contract: terms(), Kind: restore,
		Title: "Restore the file server", Scenario: "ransomware on fs-01", ScheduledFor: at(14 * day),
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func result(org domain.OrgID, now time.Time, outcome incidentsv1.ExerciseOutcome, found ...string) *domain.RecordExerciseResult {
	return &domain.RecordExerciseResult{By: by(org, now), Outcome: outcome, Summary: "restored in 3 h", Findings: found}
}

func scheduled() *incidentsv1.ExerciseScheduled {
	return &incidentsv1.ExerciseScheduled{
		ExerciseId: exerciseID, ContractId: contractID, CustomerOrgId: string(customer), ProviderOrgId: string(provider),
		Kind: restore, Title: "Restore the file server", Scenario: "ransomware on fs-01", ScheduledFor: ts(at(14 * day)),
	}
}

func resultRecorded(outcome incidentsv1.ExerciseOutcome, performed time.Time, found ...string) *incidentsv1.ExerciseResultRecorded {
	return &incidentsv1.ExerciseResultRecorded{ExerciseId: exerciseID, Outcome: outcome, Summary: "restored in 3 h", Findings: found, PerformedAt: ts(performed)}
}

func foldExercise(t *testing.T, cmds ...domain.ExerciseCommand) domain.Exercise {
	t.Helper()
	var x domain.Exercise
	for i, cmd := range cmds {
		es, err := domain.DecideExercise(x, cmd)
		if err != nil {
			t.Fatalf("given %d (%T): %v", i, cmd, err)
		}
		x = applyExercise(x, cmd, es...)
	}
	return x
}

func applyExercise(x domain.Exercise, cmd domain.ExerciseCommand, es ...proto.Message) domain.Exercise {
	b := domain.ByOf(cmd)
	for _, e := range es {
		x = domain.EvolveExercise(x, e, domain.Meta{Time: b.At, Actor: b.Actor, Position: x.Position + 1})
	}
	return x
}

type xspec struct {
	name  string
	given []domain.ExerciseCommand
	when  domain.ExerciseCommand
	then  []proto.Message
	err   error
	field string
	state func(t *testing.T, x domain.Exercise)
}

func (c xspec) run(t *testing.T) {
	t.Helper()
	x := foldExercise(t, c.given...)
	before := snapshot(t, x)

	got, err := domain.DecideExercise(x, c.when)

	if c.err != nil {
		if !errors.Is(err, c.err) {
			t.Fatalf("error = %v, want %v", err, c.err)
		}
		if c.field != "" {
			var ve domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("error = %v, want a validation error of field %q", err, c.field)
			}
		}
		if got != nil {
			t.Fatalf("events %s alongside error %v", text(got), err)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if len(got) != len(c.then) {
		t.Fatalf("got %d events, want %d:\n%s", len(got), len(c.then), text(got))
	}
	for i := range got {
		if !proto.Equal(got[i], c.then[i]) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, text(got[i:i+1]), text(c.then[i:i+1]))
		}
	}
	after := applyExercise(x, c.when, got...)
	if now := snapshot(t, x); now != before {
		t.Fatalf("decide or evolve changed the earlier state:\nbefore %s\nafter  %s", before, now)
	}
	fromWire := x
	for _, e := range got {
		fromWire = applyExercise(fromWire, c.when, wire(t, e))
	}
	if !reflect.DeepEqual(after, fromWire) {
		t.Fatalf("state from decoded events differs:\n%+v\n%+v", after, fromWire)
	}
	if c.state != nil {
		c.state(t, after)
	}
}

func runExercises(t *testing.T, specs []xspec) {
	t.Helper()
	for _, c := range specs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t)
		})
	}
}

func TestScheduleExercise(t *testing.T) {
	t.Parallel()
	bare := &incidentsv1.ExerciseScheduled{
		ExerciseId: exerciseID, ContractId: contractID, CustomerOrgId: string(customer), ProviderOrgId: string(provider),
		Kind: tabletop, Title: "Tabletop", ScheduledFor: ts(at(-day)),
	}
	runExercises(t, []xspec{
		{
			name: "the customer schedules", when: schedule(), then: []proto.Message{scheduled()},
			state: func(t *testing.T, x domain.Exercise) {
				want := domain.Exercise{
					ID: exerciseID, ContractID: contractID, Customer: customer, Provider: provider, Kind: restore,
					Title: "Restore the file server", Scenario: "ransomware on fs-01", ScheduledFor: at(14 * day), ScheduledBy: customer, Position: 1,
				}
				if !reflect.DeepEqual(x, want) {
					t.Fatalf("exercise = %+v\nwant %+v", x, want)
				}
			},
		},
		{
			name: "the provider schedules", when: schedule(func(c *domain.ScheduleExercise) { c.By = by(provider, base) }), then: []proto.Message{scheduled()},
			state: func(t *testing.T, x domain.Exercise) {
				if x.ScheduledBy != provider {
					t.Fatalf("scheduled by %q", x.ScheduledBy)
				}
			},
		},
		{
			name: "no scenario, in the past",
			when: &domain.ScheduleExercise{By: by(customer, base), ExerciseID: exerciseID, Contract: terms(), Kind: tabletop, Title: "Tabletop", ScheduledFor: at(-day)},
			then: []proto.Message{bare},
		},
		{
			name: "contract ends one second later", when: schedule(func(c *domain.ScheduleExercise) { c.Contract.EndsAt = base.Add(sec) }),
			then: []proto.Message{scheduled()},
		},
		{name: "twice", given: []domain.ExerciseCommand{schedule()}, when: schedule(), err: domain.ErrAlreadyExists},
		{name: "unknown contract", when: schedule(func(c *domain.ScheduleExercise) { c.Contract = domain.Contract{} }), err: domain.NotFoundError{What: "contract"}},
		{name: "outsider", when: schedule(func(c *domain.ScheduleExercise) { c.By = by(outsider, base) }), err: domain.ErrNotParty},
		{name: "no org", when: schedule(func(c *domain.ScheduleExercise) { c.By = by("", base) }), err: domain.ErrNotParty},
		{name: "no terms in force", when: schedule(func(c *domain.ScheduleExercise) { c.Contract.InForce = false }), err: domain.ErrContractNotActive},
		{name: "contract ends now", when: schedule(func(c *domain.ScheduleExercise) { c.Contract.EndsAt = base }), err: domain.ErrContractNotActive},
		{name: "contract ended", when: schedule(func(c *domain.ScheduleExercise) { c.Contract.EndsAt = base.Add(-day) }), err: domain.ErrContractNotActive},
		{name: "empty id", when: schedule(func(c *domain.ScheduleExercise) { c.ExerciseID = " " }), err: domain.ErrInvalid, field: "exercise_id"},
		{name: "empty title", when: schedule(func(c *domain.ScheduleExercise) { c.Title = "" }), err: domain.ErrInvalid, field: "title"},
		{name: "no kind", when: schedule(func(c *domain.ScheduleExercise) { c.Kind = 0 }), err: domain.ErrInvalid, field: "kind"},
		{name: "unknown kind", when: schedule(func(c *domain.ScheduleExercise) { c.Kind = 42 }), err: domain.ErrInvalid, field: "kind"},
		{name: "no date", when: schedule(func(c *domain.ScheduleExercise) { c.ScheduledFor = time.Time{} }), err: domain.ErrInvalid, field: "scheduled_for"},
	})
}

func TestRecordExerciseResult(t *testing.T) {
	t.Parallel()
	planned := []domain.ExerciseCommand{schedule()}
	held := []domain.ExerciseCommand{schedule(), result(provider, at(15*day), findings, "slow restore")}
	earlier := result(customer, at(15*day), passed)
	earlier.PerformedAt = at(14 * day)
	future := result(customer, at(15*day), passed)
	future.PerformedAt = at(15*day + sec)
	runExercises(t, []xspec{
		{
			name: "the provider records it", given: planned, when: result(provider, at(15*day), findings, "slow restore", "no runbook"),
			then: []proto.Message{resultRecorded(findings, at(15*day), "slow restore", "no runbook")},
			state: func(t *testing.T, x domain.Exercise) {
				if x.Outcome != findings || x.Summary != "restored in 3 h" || !reflect.DeepEqual(x.Findings, []string{"slow restore", "no runbook"}) ||
					!x.PerformedAt.Equal(at(15*day)) || x.Position != 2 || x.ScheduledBy != customer {
					t.Fatalf("exercise = %+v", x)
				}
			},
		},
		{name: "performed earlier", given: planned, when: earlier, then: []proto.Message{resultRecorded(passed, at(14*day))}},
		{name: "cancelled", given: planned, when: result(customer, at(day), cancelled), then: []proto.Message{resultRecorded(cancelled, at(day))}},
		{name: "the same result again", given: held, when: result(customer, at(16*day), findings, "slow restore")},
		{name: "another result", given: held, when: result(customer, at(16*day), passed), err: domain.ErrWrongStatus},
		{name: "other findings", given: held, when: result(customer, at(16*day), findings, "other"), err: domain.ErrWrongStatus},
		{name: "unknown exercise", when: result(customer, at(day), passed), err: domain.NotFoundError{What: "exercise"}},
		{name: "outsider", given: planned, when: result(outsider, at(day), passed), err: domain.ErrNotParty},
		{name: "no org", given: planned, when: result("", at(day), passed), err: domain.ErrNotParty},
		{name: "no outcome", given: planned, when: result(customer, at(day), 0), err: domain.ErrInvalid, field: "outcome"},
		{name: "unknown outcome", given: planned, when: result(customer, at(day), 17), err: domain.ErrInvalid, field: "outcome"},
		{name: "performed in the future", given: planned, when: future, err: domain.ErrInvalid, field: "performed_at"},
	})
}

func TestExerciseCommands(t *testing.T) {
	t.Parallel()
	runExercises(t, []xspec{
		{name: "nil", when: nil, err: domain.ErrInvalid, field: "command"},
		{name: "nil schedule", when: (*domain.ScheduleExercise)(nil), err: domain.ErrInvalid, field: "command"},
		{name: "nil result", given: []domain.ExerciseCommand{schedule()}, when: (*domain.RecordExerciseResult)(nil), err: domain.ErrInvalid, field: "command"},
		{name: "an incident command", given: []domain.ExerciseCommand{schedule()}, when: resolve(customer, at(hour)), err: domain.ErrInvalid, field: "command"},
	})
}

func TestEvolveExercise(t *testing.T) {
	t.Parallel()
	x := foldExercise(t, schedule(), result(provider, at(15*day), findings, "slow restore"))
	if got := domain.EvolveExercise(x, reported(), domain.Meta{Time: at(day), Position: 9}); !reflect.DeepEqual(got, x) {
		t.Fatalf("an incident event changed the exercise:\n%+v\n%+v", got, x)
	}
	if got := domain.EvolveExercise(x, nil, domain.Meta{Position: 9}); !reflect.DeepEqual(got, x) {
		t.Fatalf("nil changed the exercise: %+v", got)
	}
	// An older position does not move it back.
	if got := domain.EvolveExercise(x, resultRecorded(passed, at(16*day)), domain.Meta{Position: 1}); got.Position != 2 || got.Outcome != passed {
		t.Fatalf("exercise = %+v", got)
	}

	b := snapshot(t, x)
	var back domain.Exercise
	if err := json.Unmarshal([]byte(b), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, x) {
		t.Fatalf("json round trip changed the exercise:\n%+v\n%+v", x, back)
	}

	m := domain.ExerciseToProto(x)
	want := &incidentsv1.Exercise{
		ExerciseId: exerciseID, ContractId: contractID, Kind: restore, Title: "Restore the file server", Scenario: "ransomware on fs-01",
		ScheduledFor: ts(at(14 * day)), ScheduledByOrgId: string(customer), Outcome: findings, Summary: "restored in 3 h",
		Findings: []string{"slow restore"}, PerformedAt: ts(at(15 * day)), Position: 2,
	}
	if !proto.Equal(m, want) {
		t.Fatalf("message = %v\nwant %v", m, want)
	}
	if p := domain.ExerciseToProto(foldExercise(t, schedule())); p.GetPerformedAt() != nil || p.GetOutcome() != 0 {
		t.Fatalf("planned = %v", p)
	}
}
