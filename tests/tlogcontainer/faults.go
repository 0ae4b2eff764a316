package tlogcontainer

// Network faults between containers, for real: iptables rules in a
// container's network namespace, entered from the Docker host with
// nsenter. Rules match the other containers' addresses on the cluster's
// network, so clients on the host (whose connections arrive through
// Docker's port forwarding) keep reaching an agent that its peers cannot:
// the zombie leader of a partition. Every rule lives in one chain per
// direction (TLOG-IN, TLOG-OUT), which Heal empties.
//
// They need root on the Docker host, with nsenter and iptables. Latency
// (Slow, in slow.go) goes through an NFQUEUE this process serves, since
// the kernels this runs on here have no netem.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/moby/moby/client"
)

// FaultsSupported says why network faults cannot be injected here (nil:
// they can).
func FaultsSupported() error {
	if os.Geteuid() != 0 {
		return errors.New("network faults need root on the Docker host (nsenter, iptables)")
	}
	for _, tool := range []string{"nsenter", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("network faults need %s on the Docker host", tool)
		}
	}
	return nil
}

// Isolate cuts a off from each of others, both ways (not from MinIO, nor
// from clients on the host).
func (a *Agent) Isolate(ctx context.Context, others ...*Agent) error {
	for _, o := range others {
		ip, err := o.ip(ctx)
		if err != nil {
			return err
		}
		if err := a.drop(ctx, ip, true, true, 0); err != nil {
			return err
		}
	}
	return nil
}

// DropTo drops what a sends to other; what other sends to a arrives (a
// one-way loss).
func (a *Agent) DropTo(ctx context.Context, other *Agent) error {
	ip, err := other.ip(ctx)
	if err != nil {
		return err
	}
	return a.drop(ctx, ip, false, true, 0)
}

// CutBucket cuts a off from MinIO, both ways.
func (a *Agent) CutBucket(ctx context.Context) error {
	if a.c.MinIO == nil {
		return errors.New("tlogcontainer: a single tlog dev has its bucket inside its container")
	}
	ip, err := containerIP(ctx, a.c, a.c.MinIO.Container.GetContainerID())
	if err != nil {
		return err
	}
	return a.drop(ctx, ip, true, true, 0)
}

// Loss drops a share p (0 < p < 1) of the packets between a and each of
// others, at random, both ways.
func (a *Agent) Loss(ctx context.Context, p float64, others ...*Agent) error {
	if p <= 0 || p >= 1 {
		return fmt.Errorf("tlogcontainer: loss %v is not in (0, 1)", p)
	}
	for _, o := range others {
		ip, err := o.ip(ctx)
		if err != nil {
			return err
		}
		if err := a.drop(ctx, ip, true, true, p); err != nil {
			return err
		}
	}
	return nil
}

// Heal removes every fault from a: its rules first, then (for Slow) the
// queue, letting every held packet go.
func (a *Agent) Heal(ctx context.Context) error {
	err := a.chains(ctx)
	for _, chain := range []string{"TLOG-IN", "TLOG-OUT"} {
		if err != nil {
			break
		}
		err = a.iptables(ctx, "-F", chain)
	}
	// A restarted container has a new namespace without the rules; the
	// queue on the old one still has to go.
	return errors.Join(err, a.stopSlow())
}

// drop adds rules dropping traffic from (in) and to (out) ip; p > 0
// drops only that share of packets.
func (a *Agent) drop(ctx context.Context, ip string, in, out bool, p float64) error {
	if err := a.chains(ctx); err != nil {
		return err
	}
	var share []string
	if p > 0 {
		share = []string{"-m", "statistic", "--mode", "random", "--probability", strconv.FormatFloat(p, 'f', -1, 64)}
	}
	if in {
		if err := a.iptables(ctx, append(append([]string{"-A", "TLOG-IN", "-s", ip}, share...), "-j", "DROP")...); err != nil {
			return err
		}
	}
	if out {
		if err := a.iptables(ctx, append(append([]string{"-A", "TLOG-OUT", "-d", ip}, share...), "-j", "DROP")...); err != nil {
			return err
		}
	}
	return nil
}

// chains creates TLOG-IN and TLOG-OUT, hooked into INPUT and OUTPUT, once
// per container start (a restarted container has a new namespace).
func (a *Agent) chains(ctx context.Context) error {
	if err := a.iptables(ctx, "-S", "TLOG-IN"); err == nil {
		return nil
	}
	for _, c := range [][]string{
		{"-N", "TLOG-IN"}, {"-N", "TLOG-OUT"},
		{"-I", "INPUT", "-j", "TLOG-IN"}, {"-I", "OUTPUT", "-j", "TLOG-OUT"},
	} {
		if err := a.iptables(ctx, c...); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) iptables(ctx context.Context, args ...string) error {
	pid, err := a.pid(ctx)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(pid), "-n", "iptables", "-w"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tlogcontainer: iptables %s in %s: %w: %s", strings.Join(args, " "), a.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (a *Agent) pid(ctx context.Context) (int, error) {
	st, err := a.Container.State(ctx)
	if err != nil {
		return 0, fmt.Errorf("tlogcontainer: state of %s: %w", a.Name, err)
	}
	if !st.Running || st.Pid == 0 {
		return 0, fmt.Errorf("tlogcontainer: %s is not running", a.Name)
	}
	return st.Pid, nil
}

func (a *Agent) ip(ctx context.Context) (string, error) {
	return containerIP(ctx, a.c, a.Container.GetContainerID())
}

// containerIP is the container's address on the cluster's network.
func containerIP(ctx context.Context, c *Cluster, id string) (string, error) {
	res, err := c.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("tlogcontainer: inspect %s: %w", id, err)
	}
	if res.Container.NetworkSettings != nil {
		if n, ok := res.Container.NetworkSettings.Networks[c.Network.Name]; ok && n.IPAddress.IsValid() {
			return n.IPAddress.String(), nil
		}
	}
	return "", fmt.Errorf("tlogcontainer: %s has no address on %s", id, c.Network.Name)
}
