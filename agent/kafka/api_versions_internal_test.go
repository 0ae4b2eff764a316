package kafka

import "testing"

// ApiVersions finalizes transaction.version at the configured level and
// lists the supported range 0-2 only to v4+ requests (older clients read a
// minimum of 0 as "not supported").
func TestFeatureLevels(t *testing.T) {
	for _, tc := range []struct {
		level, version    int16
		supported, finals int
	}{
		{level: 2, version: 4, supported: 1, finals: 1},
		{level: 2, version: 3, supported: 0, finals: 1},
		{level: 1, version: 4, supported: 1, finals: 1},
		{level: 0, version: 4, supported: 1, finals: 0},
	} {
		s := &Server{cfg: Config{TransactionVersion: tc.level}}
		sup, fin, epoch := s.features(tc.version)
		if len(sup) != tc.supported || len(fin) != tc.finals || epoch != 1 {
			t.Fatalf("level %d, v%d: %d supported, %d finalized, epoch %d", tc.level, tc.version, len(sup), len(fin), epoch)
		}
		if len(sup) > 0 && (sup[0].Name != "transaction.version" || sup[0].MinVersion != 0 || sup[0].MaxVersion != 2) {
			t.Fatalf("supported %+v", sup[0])
		}
		if len(fin) > 0 && (fin[0].Name != "transaction.version" || fin[0].MinVersionLevel != tc.level || fin[0].MaxVersionLevel != tc.level) {
			t.Fatalf("finalized %+v, want level %d", fin[0], tc.level)
		}
	}
}

// kafka39 is what a Kafka 3.9 broker (KRaft) advertises in ApiVersions
// for each API tlog serves, from apache/kafka's request schemas on the
// 3.9 branch (docs/compatibility.md has the whole table, with 4.0's).
var kafka39 = map[int16][2]int16{
	0: {0, 11}, 1: {0, 17}, 2: {0, 9}, 3: {0, 12}, 8: {0, 9}, 9: {0, 9}, 10: {0, 6},
	11: {0, 9}, 12: {0, 4}, 13: {0, 5}, 14: {0, 5}, 15: {0, 5}, 16: {0, 5}, 17: {0, 1},
	18: {0, 4}, 19: {0, 7}, 20: {0, 6}, 21: {0, 2}, 22: {0, 5}, 23: {0, 4}, 24: {0, 5},
	25: {0, 4}, 26: {0, 4}, 27: {0, 1}, 28: {0, 4}, 29: {0, 3}, 30: {0, 3}, 31: {0, 3},
	32: {0, 4}, 33: {0, 2}, 35: {0, 4}, 36: {0, 2}, 37: {0, 3}, 42: {0, 2}, 44: {0, 1},
	47: {0, 0}, 48: {0, 1}, 49: {0, 1}, 50: {0, 0}, 51: {0, 0}, 60: {0, 1}, 61: {0, 0},
	65: {0, 0}, 66: {0, 1}, 68: {0, 0}, 69: {0, 0},
}

// Every version Kafka 3.9 serves of an API tlog serves is served, but for
// the message formats before record batches v2 (Produce below v3, Fetch
// below v4), which tlog does not store, as Kafka 4.0 does not.
func TestServesKafka39Versions(t *testing.T) {
	oldFormats := map[int16]int16{0: 3, 1: 4}
	for key, h := range handlers {
		k, ok := kafka39[key]
		if !ok {
			t.Errorf("API %d (v%d-%d) is missing from the Kafka 3.9 table", key, h.min, h.max)
			continue
		}
		wantMin := k[0]
		if m, ok := oldFormats[key]; ok {
			wantMin = m
		}
		if h.min > wantMin || h.max < k[1] {
			t.Errorf("API %d: tlog serves v%d-%d, Kafka 3.9 v%d-%d", key, h.min, h.max, k[0], k[1])
		}
	}
}
