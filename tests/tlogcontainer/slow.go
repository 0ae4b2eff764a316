package tlogcontainer

// Slow links without netem: the kernels here lack sch_netem, so packets
// between an agent and chosen peers are sent to an NFQUEUE in the agent's
// network namespace, and this process holds each one for the delay before
// letting it go (or drops a share of them). The rules use
// --queue-bypass and the queue fails open, so if this process goes away
// the link carries on at full speed rather than going dark.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
)

// slowQueue is the NFQUEUE number used in every agent's namespace (each
// namespace has its own queues).
const slowQueue = 7

// Slow delays every packet between a and each of others by delay, in
// both directions (so a round trip grows by twice delay), and drops a
// share loss (0 <= loss < 1) of them at random, until Heal.
func (a *Agent) Slow(ctx context.Context, delay time.Duration, loss float64, others ...*Agent) error {
	if delay < 0 || delay > time.Minute {
		return fmt.Errorf("tlogcontainer: delay %v is not in [0, 1m]", delay)
	}
	if loss < 0 || loss >= 1 {
		return fmt.Errorf("tlogcontainer: loss %v is not in [0, 1)", loss)
	}
	if len(others) == 0 {
		return errors.New("tlogcontainer: Slow needs the agents at the other end of the link")
	}
	if err := a.chains(ctx); err != nil {
		return err
	}
	a.slowMu.Lock()
	defer a.slowMu.Unlock()
	if a.slow == nil {
		pid, err := a.pid(ctx)
		if err != nil {
			return err
		}
		d, err := startDelayer(pid, delay, loss)
		if err != nil {
			return fmt.Errorf("tlogcontainer: slow link from %s: %w", a.Name, err)
		}
		a.slow = d
	} else if a.slow.delay != delay || a.slow.loss != loss {
		return fmt.Errorf("tlogcontainer: %s already has slow links of %v and %v loss; Heal first", a.Name, a.slow.delay, a.slow.loss)
	}
	queue := []string{"-j", "NFQUEUE", "--queue-num", strconv.Itoa(slowQueue), "--queue-bypass"}
	for _, o := range others {
		ip, err := o.ip(ctx)
		if err != nil {
			return err
		}
		if err := a.iptables(ctx, append([]string{"-A", "TLOG-IN", "-s", ip}, queue...)...); err != nil {
			return err
		}
		if err := a.iptables(ctx, append([]string{"-A", "TLOG-OUT", "-d", ip}, queue...)...); err != nil {
			return err
		}
	}
	return nil
}

// stopSlow lets every held packet go and closes the queue; Heal calls it
// once the rules that feed the queue are gone.
func (a *Agent) stopSlow() error {
	a.slowMu.Lock()
	defer a.slowMu.Unlock()
	if a.slow == nil {
		return nil
	}
	err := a.slow.stop()
	a.slow = nil
	return err
}

// delayer serves one namespace's queue: each packet is held until its
// due time, in arrival order (the delay is the same for all, so arrival
// order is due order).
type delayer struct {
	delay time.Duration
	loss  float64
	nf    *nfqueue.Nfqueue

	held   chan heldPacket
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type heldPacket struct {
	id  uint32
	due time.Time
}

func startDelayer(pid int, delay time.Duration, loss float64) (*delayer, error) {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, fmt.Errorf("open the network namespace: %w", err)
	}
	defer ns.Close()
	nf, err := nfqueue.Open(&nfqueue.Config{
		NetNS:        int(ns.Fd()),
		NfQueue:      slowQueue,
		MaxQueueLen:  1 << 16,
		Copymode:     nfqueue.NfQnlCopyMeta,
		Flags:        nfqueue.NfQaCfgFlagFailOpen,
		WriteTimeout: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("open NFQUEUE %d: %w", slowQueue, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &delayer{delay: delay, loss: loss, nf: nf, held: make(chan heldPacket, 1<<16), cancel: cancel}
	hook := func(at nfqueue.Attribute) int {
		if at.PacketID == nil {
			return 0
		}
		if d.loss > 0 && rand.Float64() < d.loss {
			_ = nf.SetVerdict(*at.PacketID, nfqueue.NfDrop)
			return 0
		}
		select {
		case d.held <- heldPacket{id: *at.PacketID, due: time.Now().Add(d.delay)}:
		case <-ctx.Done():
			_ = nf.SetVerdict(*at.PacketID, nfqueue.NfAccept)
		}
		return 0
	}
	onErr := func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		// ENOBUFS and the like: the kernel dropped messages (the queue
		// fails open, so their packets went through); keep serving.
		return 0
	}
	if err := nf.RegisterWithErrorFunc(ctx, hook, onErr); err != nil {
		cancel()
		nf.Close()
		return nil, fmt.Errorf("register on NFQUEUE %d: %w", slowQueue, err)
	}
	d.wg.Add(1)
	go d.release(ctx)
	return d, nil
}

// release lets each held packet go at its due time; once stopped, it
// lets the rest go at once.
func (d *delayer) release(ctx context.Context) {
	defer d.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case p := <-d.held:
			if wait := time.Until(p.due); wait > 0 {
				t.Reset(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
				}
			}
			_ = d.nf.SetVerdict(p.id, nfqueue.NfAccept)
		case <-ctx.Done():
			for {
				select {
				case p := <-d.held:
					_ = d.nf.SetVerdict(p.id, nfqueue.NfAccept)
				default:
					return
				}
			}
		}
	}
}

func (d *delayer) stop() error {
	d.cancel()
	d.wg.Wait()
	return d.nf.Close()
}
