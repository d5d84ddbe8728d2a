package ingest

import (
	"context"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
	"github.com/jsmplatform/jsm/services/integration/ingest/mapping"
)

// batchWorkers bounds the events of one batch ingested at once.
const batchWorkers = 16

// ingestAll ingests a batch: the events of one ticket one after the other,
// in the batch's order, and those of different tickets side by side. On a
// transient failure it stops taking new events and returns the results of
// those done (in the batch's order) with the failed event's id.
func (s *Sources) ingestAll(ctx context.Context, src domain.State, transport string, events []cloudevents.Event) ([]Result, string, error) {
	actions := make([]mapped, len(events))
	groups := map[string][]int{}
	var order []string
	for i, e := range events {
		actions[i] = mapEvent(src, e)
		k := orderKey(e, actions[i])
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	results := make([]Result, len(events))
	done := make([]bool, len(events))
	var (
		mu     sync.Mutex
		failed string
		err    error
		wg     sync.WaitGroup
	)
	work := make(chan []int)
	for range min(batchWorkers, len(order)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idx := range work {
				for _, i := range idx {
					mu.Lock()
					stop := err != nil
					mu.Unlock()
					if stop {
						break
					}
					res, e := s.ingestMapped(ctx, src, transport, events[i], actions[i])
					mu.Lock()
					if e != nil {
						if err == nil {
							failed, err = events[i].ID(), e
						}
					} else {
						results[i], done[i] = res, true
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, k := range order {
		work <- groups[k]
	}
	close(work)
	wg.Wait()
	if err != nil {
		var taken []Result
		for i := range results {
			if done[i] {
				taken = append(taken, results[i])
			}
		}
		return taken, failed, err
	}
	return results, "", nil
}

// orderKey names what an event's order matters for: the ticket it is
// about (or the object it names), else only itself.
func orderKey(e cloudevents.Event, m mapped) string {
	act := m.act
	switch {
	case m.err != nil:
		return "event\x00" + e.ID()
	case !act.Ref.IsZero():
		return "ref\x00" + string(act.Object) + "\x00" + act.Ref.System + "\x00" + act.Ref.ID
	case act.ObjectID != "":
		return "object\x00" + act.ObjectID
	case act.Object == mapping.Assets:
		return "assets\x00" + act.ContractID
	}
	return "event\x00" + e.ID()
}
