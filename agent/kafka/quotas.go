package kafka

// Client quotas, enforced as Kafka's brokers enforce them: each agent
// measures the bytes a client produces and is sent, per quota entity,
// over a window of 11 one-second samples; a client over its quota is
// answered with throttle_time_ms = (rate - quota) / quota * window, and
// its connection is muted for that long (KIP-219: after the response for
// clients that throttle themselves, before it for older versions). An
// over-quota fetch is answered empty, its bytes not counted, as Kafka
// does. The quotas themselves are in the journal (metadata/quotas.go);
// the principal's user name and the request's client id select them.

import (
	"strings"
	"sync"
	"time"

	"github.com/tlog-io/tlog/metadata"
)

const (
	quotaSamples = 11
	quotaWindow  = time.Second
)

// rateSensor is one entity's byte rate.
type rateSensor struct {
	windows [quotaSamples]int64   // window number (unix seconds) of each sample
	bytes   [quotaSamples]float64 // bytes in it
	used    time.Time
}

// rate is the bytes per second over the live samples, measured over at
// least quotaSamples-1 windows (Kafka's rule, so one early burst does not
// read as a huge rate), and that span.
func (r *rateSensor) rate(now time.Time) (float64, time.Duration) {
	cur := now.Unix()
	total, oldest := 0.0, cur
	for i, w := range r.windows {
		if w > cur-quotaSamples && r.bytes[i] > 0 {
			total += r.bytes[i]
			oldest = min(oldest, w)
		}
	}
	span := now.Sub(time.Unix(oldest, 0))
	span = max(span, (quotaSamples-1)*quotaWindow)
	return total / span.Seconds(), span
}

func (r *rateSensor) add(bytes float64, now time.Time) {
	w := now.Unix()
	i := int(w % quotaSamples)
	if r.windows[i] != w {
		r.windows[i], r.bytes[i] = w, 0
	}
	r.bytes[i] += bytes
	r.used = now
}

// quotas holds the sensors of one agent.
type quotas struct {
	mu      sync.Mutex
	sensors map[string]*rateSensor
	swept   time.Time
}

// quotaUser is the user part of principal ("User:alice" is alice).
func quotaUser(principal string) string {
	return strings.TrimPrefix(principal, "User:")
}

// record counts bytes of key's traffic (produce or fetch) for the
// request's client and returns how long it must be throttled (0 if under
// its quota, or none applies). With undo, the bytes are counted only if
// no throttle results (an over-quota fetch sends nothing).
func (q *quotas) record(st *metadata.State, key, principal, clientID string, bytes int, now time.Time, undo bool) time.Duration {
	user := quotaUser(principal)
	limit, entity, ok := st.QuotaFor(user, clientID, key)
	if !ok {
		return 0
	}
	// A default part stands for each user (client) on its own, as in
	// Kafka: the sensor is the actual name's.
	id := key
	if entity.User != nil {
		id += "|user=" + user
	}
	if entity.ClientID != nil {
		id += "|client-id=" + clientID
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sensors == nil {
		q.sensors = map[string]*rateSensor{}
	}
	s := q.sensors[id]
	if s == nil {
		s = &rateSensor{}
		q.sensors[id] = s
	}
	s.add(float64(bytes), now)
	rate, span := s.rate(now)
	var throttle time.Duration
	if rate > limit {
		throttle = time.Duration((rate - limit) / limit * float64(span))
		throttle = min(throttle, quotaSamples*quotaWindow)
		if undo {
			s.add(-float64(bytes), now)
		}
	}
	if now.Sub(q.swept) > time.Minute {
		q.swept = now
		for k, s := range q.sensors {
			if now.Sub(s.used) > quotaSamples*quotaWindow {
				delete(q.sensors, k)
			}
		}
	}
	return throttle
}

// throttleMillis is d as a response's throttle_time_ms.
func throttleMillis(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	return int32(min(d.Milliseconds()+1, 1<<30))
}
