// sarama 1.22 (Debian's golang-github-shopify-sarama-dev) configured for Kafka 2.1, against a Ferrite broker.
//
//	sarama_client <broker> <topic> <group> <records>
//
// Creates the topic with ClusterAdmin (CreateTopics v2), produces keyed records with binary values and
// headers through a SyncProducer (Produce v3), consumes them back byte-exact with a ConsumerGroup (JoinGroup v1,
// SyncGroup v0, Heartbeat v0, OffsetFetch v1, Fetch v4, OffsetCommit v1), and checks the committed offsets
// with ClusterAdmin.ListConsumerGroupOffsets (OffsetFetch v1). Prints one "committed <partition> <offset>"
// line per partition; exits non-zero on any mismatch or error. Built offline in GOPATH mode by the Rust test.
package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

const partitions = 3

type record struct {
	key, value []byte
	headers    []sarama.RecordHeader
}

type position struct {
	partition int32
	offset    int64
}

// The i-th record: a text key, a value holding every byte value (and a NUL), and two headers.
func makeRecord(i int) record {
	value := []byte(fmt.Sprintf("value-%d-", i))
	for b := 0; b < 256; b += 7 + i%5 {
		value = append(value, byte(b))
	}
	value = append(value, 0x00, 0xff, 'x')
	return record{
		key:   []byte(fmt.Sprintf("key-%d", i%7)),
		value: value,
		headers: []sarama.RecordHeader{
			{Key: []byte("index"), Value: []byte(strconv.Itoa(i))},
			{Key: []byte("bin"), Value: []byte{0x00, byte(i), 0xfe}},
		},
	}
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_1_0_0
	c.ClientID = "ferrite-sarama-test"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = sarama.NewHashPartitioner
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Return.Errors = true
	c.Consumer.Group.Rebalance.Timeout = 20 * time.Second
	c.Admin.Timeout = 10 * time.Second
	return c
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 5 {
		fail("usage: sarama_client <broker> <topic> <group> <records>")
	}
	broker, topic, group := os.Args[1], os.Args[2], os.Args[3]
	n, err := strconv.Atoi(os.Args[4])
	if err != nil || n <= 0 {
		fail("bad record count %q", os.Args[4])
	}
	sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Ltime|log.Lmicroseconds)
	brokers := []string{broker}

	admin, err := sarama.NewClusterAdmin(brokers, config())
	if err != nil {
		fail("NewClusterAdmin: %v", err)
	}
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		fail("CreateTopic: %v", err)
	}
	fmt.Printf("created %s with %d partitions\n", topic, partitions)

	produced := produce(brokers, topic, n)
	consumed := consume(brokers, topic, group, n)
	for pos, want := range produced {
		got, ok := consumed[pos]
		if !ok {
			fail("record at partition %d offset %d was not consumed", pos.partition, pos.offset)
		}
		if !bytes.Equal(got.key, want.key) || !bytes.Equal(got.value, want.value) {
			fail("record at partition %d offset %d differs: got key %q value %x, want key %q value %x",
				pos.partition, pos.offset, got.key, got.value, want.key, want.value)
		}
		if len(got.headers) != len(want.headers) {
			fail("record at partition %d offset %d has %d headers, want %d",
				pos.partition, pos.offset, len(got.headers), len(want.headers))
		}
		for i, h := range want.headers {
			if !bytes.Equal(got.headers[i].Key, h.Key) || !bytes.Equal(got.headers[i].Value, h.Value) {
				fail("record at partition %d offset %d: header %d differs", pos.partition, pos.offset, i)
			}
		}
	}
	if len(consumed) != len(produced) {
		fail("consumed %d records, produced %d", len(consumed), len(produced))
	}
	fmt.Printf("consumed all %d records byte-exact\n", n)
	checkCommitted(admin, topic, group, produced)
}

// Produces n records; returns them by the position the broker acknowledged.
func produce(brokers []string, topic string, n int) map[position]record {
	producer, err := sarama.NewSyncProducer(brokers, config())
	if err != nil {
		fail("NewSyncProducer: %v", err)
	}
	defer producer.Close()
	produced := make(map[position]record, n)
	for i := 0; i < n; i++ {
		r := makeRecord(i)
		msg := &sarama.ProducerMessage{
			Topic:   topic,
			Key:     sarama.ByteEncoder(r.key),
			Value:   sarama.ByteEncoder(r.value),
			Headers: r.headers,
		}
		partition, offset, err := producer.SendMessage(msg)
		if err != nil {
			fail("SendMessage %d: %v", i, err)
		}
		pos := position{partition, offset}
		if _, dup := produced[pos]; dup {
			fail("two records acknowledged at partition %d offset %d", partition, offset)
		}
		produced[pos] = r
	}
	fmt.Printf("produced %d records\n", n)
	return produced
}

type handler struct {
	mu       sync.Mutex
	want     int
	consumed map[position]record
	done     chan struct{}
	once     sync.Once
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		headers := make([]sarama.RecordHeader, 0, len(msg.Headers))
		for _, hd := range msg.Headers {
			headers = append(headers, *hd)
		}
		h.mu.Lock()
		h.consumed[position{msg.Partition, msg.Offset}] = record{msg.Key, msg.Value, headers}
		complete := len(h.consumed) >= h.want
		h.mu.Unlock()
		sess.MarkMessage(msg, "")
		if complete {
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

// Consumes until n records arrived, then leaves the group (which commits the marked offsets).
func consume(brokers []string, topic, group string, n int) map[position]record {
	cg, err := sarama.NewConsumerGroup(brokers, group, config())
	if err != nil {
		fail("NewConsumerGroup: %v", err)
	}
	go func() {
		for err := range cg.Errors() {
			fmt.Fprintf(os.Stderr, "consumer group error: %v\n", err)
		}
	}()
	h := &handler{want: n, consumed: map[position]record{}, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				finished <- err
				return
			}
		}
		finished <- nil
	}()
	select {
	case <-h.done:
	case err := <-finished:
		fail("Consume ended before all records arrived: %v", err)
	case <-time.After(60 * time.Second):
		h.mu.Lock()
		got := len(h.consumed)
		h.mu.Unlock()
		fail("consumed %d of %d records in 60 s", got, n)
	}
	cancel()
	if err := <-finished; err != nil {
		fail("Consume: %v", err)
	}
	if err := cg.Close(); err != nil {
		fail("closing the consumer group: %v", err)
	}
	return h.consumed
}

// The group's committed offset of every partition must be one past the last record produced there.
func checkCommitted(admin sarama.ClusterAdmin, topic, group string, produced map[position]record) {
	want := map[int32]int64{}
	for pos := range produced {
		if pos.offset+1 > want[pos.partition] {
			want[pos.partition] = pos.offset + 1
		}
	}
	all := make([]int32, 0, partitions)
	for p := int32(0); p < partitions; p++ {
		all = append(all, p)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: all})
	if err != nil {
		fail("ListConsumerGroupOffsets: %v", err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for _, p := range all {
		block := resp.GetBlock(topic, p)
		if block == nil {
			fail("no committed offset block for partition %d", p)
		}
		if block.Err != sarama.ErrNoError {
			fail("committed offset of partition %d: %v", p, block.Err)
		}
		expected, ok := want[p]
		if !ok {
			expected = -1 // nothing produced there: nothing committed
		}
		if block.Offset != expected {
			fail("partition %d: committed offset %d, want %d", p, block.Offset, expected)
		}
		fmt.Printf("committed %d %d\n", p, block.Offset)
	}
}
