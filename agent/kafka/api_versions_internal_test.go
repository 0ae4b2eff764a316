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
