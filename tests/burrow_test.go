package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// zookeeperJar is where Debian's zookeeper package puts the server.
const zookeeperJar = "/usr/share/java/zookeeper.jar"

// Burrow 1.2.1 (Debian's burrow, the common consumer-lag monitor) watches a
// group that consumed 600 of 1,000 records and reports its lag as 400. It
// reads the group's commits from __consumer_offsets and each partition's
// end with ListOffsets v0, which it sends whatever its kafka-version says;
// ZooKeeper (Debian's zookeeper) is only Burrow's own lock.
func TestBurrowReportsLag(t *testing.T) {
	burrow, err := exec.LookPath("Burrow")
	if err != nil {
		t.Skip("Burrow not installed (.ci/run installs Debian's burrow and zookeeper with apt-get)")
	}
	java, err := exec.LookPath("java")
	if _, serr := os.Stat(zookeeperJar); err != nil || serr != nil {
		t.Skip("ZooKeeper or java not installed (.ci/run installs Debian's zookeeper with apt-get)")
	}
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket())
	addr := a.Addr()
	createTopics(t, addr, 1, "lagged")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// 1,000 records; a group member reads 600 and commits them.
	cl := tlogtest.NewClient(t, addr)
	for i := range 1000 {
		cl.Produce(ctx, &kgo.Record{Topic: "lagged", Value: fmt.Appendf(nil, "r-%d", i)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	const group = "lag-watched"
	consumer := tlogtest.NewClient(t, addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics("lagged"),
		kgo.DisableAutoCommit(), kgo.FetchMaxBytes(4096), kgo.FetchMaxPartitionBytes(4096))
	var last *kgo.Record
	for n := 0; n < 600; {
		fs := consumer.PollRecords(ctx, 600-n)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { last = r })
		n += fs.NumRecords()
	}
	if last.Offset != 599 {
		t.Fatalf("the 600th record read is at offset %d", last.Offset)
	}
	if err := consumer.CommitRecords(ctx, last); err != nil {
		t.Fatal(err)
	}
	consumer.Close()

	dir := t.TempDir()
	zkPort, httpPort := tlogtest.FreeAddr(t), tlogtest.FreeAddr(t)
	writeFile(t, filepath.Join(dir, "zoo.cfg"), fmt.Sprintf(
		"tickTime=2000\ndataDir=%s\nclientPortAddress=127.0.0.1\nclientPort=%s\nadmin.enableServer=false\n4lw.commands.whitelist=srvr\n",
		filepath.Join(dir, "zk"), portOf(zkPort)))
	zk := startBackground(t, "zookeeper", java, "-cp", "/etc/zookeeper/conf:"+zookeeperJar,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(dir, "zoo.cfg"))
	// ZooKeeper listens before it serves, and Burrow gives up at once if
	// its first session fails: wait for srvr to report a mode.
	for {
		out, err := zkCommand(zkPort, "srvr")
		if err == nil && strings.Contains(out, "Mode:") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("ZooKeeper on %s is not serving: %q %v\n%s", zkPort, out, err, zk)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// kafka-version 0.11.0: the oldest whose Fetch reads record batches v2
	// (tlog serves no older message format).
	writeFile(t, filepath.Join(dir, "burrow.toml"), fmt.Sprintf(`[general]
pidfile="%[1]s/burrow.pid"
[logging]
level="info"
[zookeeper]
servers=["%[2]s"]
timeout=6
root-path="/burrow"
[client-profile.tlog]
client-id="burrow"
kafka-version="0.11.0"
[cluster.tlog]
class-name="kafka"
servers=["%[3]s"]
client-profile="tlog"
topic-refresh=5
offset-refresh=2
[consumer.tlog]
class-name="kafka"
cluster="tlog"
servers=["%[3]s"]
client-profile="tlog"
start-latest=false
[httpserver.default]
address="%[4]s"
[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1
`, dir, zkPort, addr, httpPort))
	out := startBackground(t, "Burrow", burrow, "--config-dir", dir)

	url := "http://" + httpPort + "/v3/kafka/tlog/consumer/" + group + "/lag"
	var last400 string
	for ctx.Err() == nil {
		var lag struct {
			Error  bool
			Status struct {
				Status     string
				TotalLag   int64 `json:"totallag"`
				Partitions []struct {
					Topic      string
					Partition  int32
					CurrentLag int64 `json:"current_lag"`
					End        struct{ Offset int64 }
				}
			}
		}
		if resp, err := http.Get(url); err == nil {
			err = json.NewDecoder(resp.Body).Decode(&lag)
			resp.Body.Close()
			if err == nil && !lag.Error && len(lag.Status.Partitions) == 1 {
				p := lag.Status.Partitions[0]
				last400 = fmt.Sprintf("%+v", lag.Status)
				if p.Topic == "lagged" && p.End.Offset == 600 && p.CurrentLag == 400 && lag.Status.TotalLag == 400 {
					return
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("Burrow did not report a lag of 400 for %s; last answer %s\nBurrow's output:\n%s", group, last400, out)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func portOf(addr string) string {
	_, port, _ := strings.Cut(addr, ":")
	return port
}

// startBackground runs a helper program until the test ends and returns
// what it has printed so far.
func startBackground(t *testing.T, name, bin string, args ...string) fmt.Stringer {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return out
}

// zkCommand sends one of ZooKeeper's four-letter commands.
func zkCommand(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}
