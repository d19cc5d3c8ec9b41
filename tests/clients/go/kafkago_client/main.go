// kafka-go 0.2.1 (Debian's golang-github-segmentio-kafka-go-dev) against a Ferrite broker.
//
//	kafkago_client <broker> <topic> <group> <records>
//
// kafka-go 0.2.1 speaks fixed, old request versions: it creates the topic with CreateTopics v0, produces with
// Produce v2 carrying magic 1 message sets, and consumes with Fetch v2, which returns magic 1 message sets
// (it cannot read v2 record batches). Its group reader uses FindCoordinator v0, JoinGroup v1, SyncGroup v0,
// Heartbeat v0, OffsetFetch v1, ListOffsets v1 and OffsetCommit v2.
//
// Creates the topic, writes keyed records with binary values through a Writer (hash balancer), reads them back
// with a group Reader, committing each one synchronously, and checks every record byte-exact. Prints one
// "consumed <partition> <last offset>" line per partition; exits non-zero on any mismatch or error.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

const partitions = 2

type record struct{ key, value []byte }

// The i-th record: a text key and a value holding binary bytes (a NUL and 0xff included).
func makeRecord(i int) record {
	value := []byte(fmt.Sprintf("kafka-go-%d-", i))
	for b := 0; b < 256; b += 11 + i%3 {
		value = append(value, byte(b))
	}
	value = append(value, 0x00, 0xff)
	return record{key: []byte(fmt.Sprintf("k%d", i%5)), value: value}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 5 {
		fail("usage: kafkago_client <broker> <topic> <group> <records>")
	}
	broker, topic, group := os.Args[1], os.Args[2], os.Args[3]
	n, err := strconv.Atoi(os.Args[4])
	if err != nil || n <= 0 {
		fail("bad record count %q", os.Args[4])
	}

	conn, err := kafka.Dial("tcp", broker)
	if err != nil {
		fail("Dial: %v", err)
	}
	err = conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1})
	conn.Close()
	if err != nil {
		fail("CreateTopics: %v", err)
	}
	fmt.Printf("created %s with %d partitions\n", topic, partitions)

	// Wait for the topic's partitions to have leaders (the writer looks them up once, at start).
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := kafka.DialLeader(context.Background(), "tcp", broker, topic, partitions-1)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			fail("partition %d of %s has no leader: %v", partitions-1, topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	want := make([]record, n)
	msgs := make([]kafka.Message, n)
	for i := range want {
		want[i] = makeRecord(i)
		msgs[i] = kafka.Message{Key: want[i].key, Value: want[i].value}
	}
	w := kafka.NewWriter(kafka.WriterConfig{
		Brokers:      []string{broker},
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		BatchTimeout: 50 * time.Millisecond,
		RequiredAcks: -1,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		fail("WriteMessages: %v", err)
	}
	if err := w.Close(); err != nil {
		fail("closing the writer: %v", err)
	}
	fmt.Printf("produced %d records\n", n)

	// Which record each consumed message is: its value names its index.
	expected := map[string]record{}
	for _, r := range want {
		expected[string(r.value)] = r
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        []string{broker},
		GroupID:        group,
		Topic:          topic,
		MinBytes:       1,
		MaxBytes:       1 << 20,
		MaxWait:        200 * time.Millisecond,
		SessionTimeout: 10 * time.Second,
	})
	seen := map[string]bool{}
	last := map[int]int64{}
	for len(seen) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			fail("FetchMessage after %d of %d records: %v", len(seen), n, err)
		}
		rec, ok := expected[string(m.Value)]
		if !ok {
			fail("partition %d offset %d: unexpected value %x", m.Partition, m.Offset, m.Value)
		}
		if !bytes.Equal(m.Key, rec.key) {
			fail("partition %d offset %d: key %q, want %q", m.Partition, m.Offset, m.Key, rec.key)
		}
		if seen[string(m.Value)] {
			fail("partition %d offset %d: record delivered twice", m.Partition, m.Offset)
		}
		if prev, ok := last[m.Partition]; ok && m.Offset <= prev {
			fail("partition %d: offset %d after %d", m.Partition, m.Offset, prev)
		}
		seen[string(m.Value)] = true
		last[m.Partition] = m.Offset
		if err := r.CommitMessages(ctx, m); err != nil {
			fail("CommitMessages partition %d offset %d: %v", m.Partition, m.Offset, err)
		}
	}
	if err := r.Close(); err != nil {
		fail("closing the reader: %v", err)
	}
	fmt.Printf("consumed all %d records byte-exact\n", n)
	for p := 0; p < partitions; p++ {
		if off, ok := last[p]; ok {
			fmt.Printf("consumed %d %d\n", p, off)
		}
	}
}
