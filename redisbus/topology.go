package redisbus

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Topology says where the server's own connections go: one Redis, or the
// nodes of a Redis Cluster. Safe for concurrent use.
type Topology interface {
	// NodeFor is the address of the node that serves key's slot (one
	// Redis: its address).
	NodeFor(key string) string
	// Nodes are the addresses a subscriber may connect to: classic pub/sub
	// reaches every node of a cluster, so any will do.
	Nodes() []string
	// Changed reports a failure that may mean the topology changed (a node
	// lost, a slot moved): it is read again.
	Changed()
}

// SingleNode is one Redis at addr.
func SingleNode(addr string) Topology { return single(addr) }

type single string

func (s single) NodeFor(string) string { return string(s) }
func (s single) Nodes() []string       { return []string{string(s)} }
func (s single) Changed()              {}

// AnyNode is a Redis Cluster where any node will do, such as for classic
// pub/sub, which reaches every node: the first of addrs, and the next one
// after each failure.
func AnyNode(addrs []string) Topology {
	if len(addrs) == 0 {
		addrs = []string{"localhost:6379"} // go-redis's default
	}
	return &anyNode{addrs: slices.Clone(addrs)}
}

type anyNode struct {
	addrs []string
	next  atomic.Uint64
}

func (a *anyNode) NodeFor(string) string { return a.addrs[a.next.Load()%uint64(len(a.addrs))] }
func (a *anyNode) Nodes() []string       { return slices.Clone(a.addrs) }
func (a *anyNode) Changed()              { a.next.Add(1) }

// ClusterTopology follows a Redis Cluster through cc: which master serves
// each slot, from CLUSTER SLOTS, read again after a failure.
type ClusterTopology struct {
	cc      *redis.ClusterClient
	logger  *slog.Logger
	table   atomic.Pointer[slotTable]
	loading atomic.Bool
}

// slotTable is one reading of the cluster: the master of each slot (an
// index into masters) and every node.
type slotTable struct {
	masters []string
	owner   [slots]uint16
	nodes   []string
}

// NewClusterTopology reads the cluster's slots through cc.
func NewClusterTopology(ctx context.Context, cc *redis.ClusterClient, logger *slog.Logger) (*ClusterTopology, error) {
	t := &ClusterTopology{cc: cc, logger: logger}
	if err := t.load(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *ClusterTopology) load(ctx context.Context) error {
	ranges, err := t.cc.ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("read the cluster's slots: %w", err)
	}
	tb := &slotTable{}
	for _, r := range ranges {
		if len(r.Nodes) == 0 {
			continue
		}
		i := slices.Index(tb.masters, r.Nodes[0].Addr)
		if i < 0 {
			i = len(tb.masters)
			tb.masters = append(tb.masters, r.Nodes[0].Addr)
		}
		for s := r.Start; s <= r.End && s < slots; s++ {
			tb.owner[s] = uint16(i)
		}
		for _, n := range r.Nodes {
			if !slices.Contains(tb.nodes, n.Addr) {
				tb.nodes = append(tb.nodes, n.Addr)
			}
		}
	}
	if len(tb.masters) == 0 {
		return fmt.Errorf("read the cluster's slots: no slot is served")
	}
	if old := t.table.Load(); old == nil || !slices.Equal(old.masters, tb.masters) {
		t.logger.Info("redis cluster", slog.String("masters", strings.Join(tb.masters, ",")))
	}
	t.table.Store(tb)
	return nil
}

func (t *ClusterTopology) NodeFor(key string) string {
	tb := t.table.Load()
	return tb.masters[tb.owner[Slot(key)]]
}

func (t *ClusterTopology) Nodes() []string { return slices.Clone(t.table.Load().nodes) }

// Changed reads the slots again, in the background, once at a time.
func (t *ClusterTopology) Changed() {
	if t.loading.Swap(true) {
		return
	}
	go func() {
		defer t.loading.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The client's own view first: it follows MOVED and failovers.
		t.cc.ReloadState(ctx)
		if err := t.load(ctx); err != nil {
			t.logger.Warn("redis cluster: read the slots again", slog.Any("err", err))
		}
	}()
}

// slots is the number of hash slots of a Redis Cluster.
const slots = 16384

// Slot is the hash slot of key, as Redis Cluster computes it: CRC16
// (XMODEM) of the key's hash tag (the first non-empty {...}) or of the
// whole key, modulo 16384.
func Slot(key string) uint16 {
	if start := strings.IndexByte(key, '{'); start >= 0 {
		if end := strings.IndexByte(key[start+1:], '}'); end > 0 {
			key = key[start+1 : start+1+end]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^key[i]]
	}
	return crc % slots
}

// crc16Table is CRC16-CCITT (XMODEM: polynomial 0x1021, no reflection).
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// ConnOptions are the options of the server's own connections to the
// nodes of a cluster (credentials, client name, timeouts, dialer), as the
// cluster client has them; Addr is set per node.
func ConnOptions(o *redis.ClusterOptions) *redis.Options {
	return withDefaults(&redis.Options{
		Dialer: o.Dialer, Username: o.Username, Password: o.Password, CredentialsProvider: o.CredentialsProvider,
		ClientName: o.ClientName, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		TLSConfig: o.TLSConfig, Network: "tcp",
	})
}

// withDefaults fills in what go-redis would for options it was not given
// through a client (which fills them in itself): a copy of o.
func withDefaults(o *redis.Options) *redis.Options {
	opt := *o
	if opt.Network == "" {
		opt.Network = "tcp"
	}
	if opt.Addr == "" {
		opt.Addr = "localhost:6379"
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = 5 * time.Second
	}
	if opt.Dialer == nil {
		// As go-redis dials by default: TCP with keep-alives, TLS when
		// configured.
		tlsConfig, timeout := opt.TLSConfig, opt.DialTimeout
		opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := &net.Dialer{Timeout: timeout, KeepAlive: 5 * time.Minute}
			if tlsConfig != nil {
				return (&tls.Dialer{NetDialer: d, Config: tlsConfig}).DialContext(ctx, network, addr)
			}
			return d.DialContext(ctx, network, addr)
		}
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = 3 * time.Second
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = opt.ReadTimeout
	}
	return &opt
}
