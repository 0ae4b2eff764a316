package tests

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// kafka-python 2.0 (Debian's python3-kafka) creates a topic, produces keyed
// records with acks=all, reads them back from the earliest offset, and
// reads them as a consumer group that commits and resumes.
func TestKafkaPython(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import kafka").Run(); err != nil {
		t.Skip("kafka-python not installed (.ci/run installs python3-kafka with apt-get)")
	}
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket())
	out, err := exec.Command(py, filepath.Join("clients", "kafka_python.py"), a.Addr(), "py-orders").CombinedOutput()
	if err != nil {
		t.Fatalf("kafka-python: %v\n%s", err, out)
	}
	acks := map[string]bool{}
	read := map[string]bool{}
	keyPart := map[string]string{}
	perPart := map[string]int{}
	group := ""
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[0] == "group":
			group = f[1] + " " + f[2]
		case len(f) == 3 && f[0] == "ack":
			acks[f[1]+"@"+f[2]] = true
		case len(f) == 4:
			part, key, off := f[0], f[1], f[3]
			read[part+"@"+off] = true
			if p, ok := keyPart[key]; ok && p != part {
				t.Fatalf("key %s read from partitions %s and %s", key, p, part)
			}
			keyPart[key] = part
			perPart[part]++
		default:
			t.Fatalf("unexpected output line %q\n%s", l, out)
		}
	}
	if len(acks) != 30 || len(read) != 30 {
		t.Fatalf("acknowledged %d, read %d records, want 30 each\n%s", len(acks), len(read), out)
	}
	for a := range acks {
		if !read[a] {
			t.Fatalf("acknowledged record at %s was not read back\n%s", a, out)
		}
	}
	if group != "30 0" {
		t.Fatalf("group reads: %q, want 30 then 0 (committed)\n%s", group, out)
	}
}
