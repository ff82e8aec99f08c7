// SPDX-License-Identifier: GPL-2.0
/* Plaintext of OpenSSL's SSL_write/SSL_read(_ex), with the TCP 4-tuple of the
 * connection. Built by `make -C sensor/tls`; loaded by sensor/tls/tracer.py.
 *
 * Entry uprobes remember (ssl, buf, &written) per thread; return uprobes read
 * the bytes the call moved and send them to user space through a ring buffer.
 * While a thread is inside an SSL call, programs on the socket's send and
 * receive paths note its addresses under (tgid, ssl), so that a later SSL_read
 * served from OpenSSL's own buffer still knows its connection.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define MAX_CHUNK 16384 /* bytes of plaintext per event */
#define MAX_PIECES 4    /* events per call: beyond 64 KiB a call is cut */
#define CHUNK_LAST 1    /* flags: the last event of its call */
#define AF_INET 2
#define AF_INET6 10

/* Layout mirrored by _HEADER in tracer.py: change both together. */
struct chunk {
	__u64 ts_ns;
	__u64 ssl;
	__u32 pid;	/* tgid */
	__u32 tid;
	__u32 len;	/* bytes the SSL call moved */
	__u32 offset;	/* where data[] starts within them */
	__u32 size;	/* bytes in data[] */
	__u16 family;	/* 0: addresses unknown */
	__u16 sport;	/* s = the traced process's end, d = its peer */
	__u16 dport;
	__u8 dir;	/* 0 write (egress), 1 read (ingress) */
	__u8 flags;
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
	__u8 data[MAX_CHUNK];
};

struct call {
	__u64 ssl;
	__u64 buf;
	__u64 moved;	/* size_t * of the _ex functions, 0 otherwise */
};

struct conn_key {
	__u32 tgid;
	__u32 pad;
	__u64 ssl;
};

struct addrs {
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Variable-sized records (bpf_ringbuf_output) so a 200-byte write takes
 * 300 bytes of ring, not 16 KiB. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} chunks SEC(".maps");

/* Events dropped: the ring was full (or, rarely, the scratch buffer was taken). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Threads inside an SSL call. LRU: a thread killed mid-call never returns. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct addrs);
} conns SEC(".maps");

/* An event is too big for the BPF stack. Per CPU, but a uprobe program can be
 * preempted: leave() checks that the buffer is still its own before sending. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct chunk);
} scratch SEC(".maps");

static __always_inline int enter(void *ssl, void *buf, void *moved)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call c = {.ssl = (__u64)ssl, .buf = (__u64)buf, .moved = (__u64)moved};

	bpf_map_update_elem(&calls, &tid, &c, BPF_ANY);
	return 0;
}

static __always_inline void count_lost(__u64 n)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&lost, &zero);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline int leave(long ret, __u8 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	struct call *c = bpf_map_lookup_elem(&calls, &tid);
	struct chunk *e;
	struct conn_key k;
	struct addrs *a;
	__u64 len = 0;
	__u32 pieces;

	if (!c)
		return 0;
	if (c->moved) {
		/* SSL_*_ex: 1 on success, the count in *written / *readbytes */
		if (ret == 1)
			bpf_probe_read_user(&len, sizeof(len), (void *)c->moved);
	} else if (ret > 0) {
		len = ret;
	}
	if (len == 0 || len > 0xffffffff)
		goto out;

	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		goto out;
	e->ts_ns = bpf_ktime_get_ns();
	e->ssl = c->ssl;
	e->pid = id >> 32;
	e->tid = tid;
	e->len = len;
	e->dir = dir;
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	k.tgid = id >> 32;
	k.pad = 0;
	k.ssl = c->ssl;
	a = bpf_map_lookup_elem(&conns, &k);
	if (a) {
		e->family = a->family;
		e->sport = a->sport;
		e->dport = a->dport;
		__builtin_memcpy(e->saddr, a->saddr, 16);
		__builtin_memcpy(e->daddr, a->daddr, 16);
	} else {
		e->family = 0;
		e->sport = e->dport = 0;
		__builtin_memset(e->saddr, 0, 16);
		__builtin_memset(e->daddr, 0, 16);
	}

	pieces = (len + MAX_CHUNK - 1) / MAX_CHUNK;
	if (pieces > MAX_PIECES)
		pieces = MAX_PIECES;
	/* Unrolled, with a constant offset per copy: a loop bounded by the runtime
	 * count looked unbounded to the verifier ("sequence of 8193 jumps"). */
#pragma unroll
	for (int i = 0; i < MAX_PIECES; i++) {
		/* 64-bit on purpose: with a __u32 n clang bounds-checks a zero-extended
		 * copy but passes the unchecked register, which the verifier rejects */
		__u64 off = (__u64)i * MAX_CHUNK;
		__u64 n;

		if (off >= len)
			break;
		n = len - off;
		if (n > MAX_CHUNK)
			n = MAX_CHUNK;
		if (bpf_probe_read_user(e->data, n, (void *)(c->buf + off)))
			break; /* page not present: send nothing rather than zeros */
		if (e->tid != tid) {
			/* preempted, and another thread on this CPU took the scratch
			 * buffer meanwhile: its bytes must not go out under our name */
			count_lost(pieces - i);
			break;
		}
		e->offset = off;
		e->size = n;
		e->flags = i + 1 == pieces ? CHUNK_LAST : 0;
		if (bpf_ringbuf_output(&chunks, e, offsetof(struct chunk, data) + n, 0)) {
			count_lost(pieces - i);
			break;
		}
	}
out:
	bpf_map_delete_elem(&calls, &tid);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_wr_enter, void *ssl, void *buf)
{
	return enter(ssl, buf, 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_wr_exit, int ret)
{
	return leave(ret, 0);
}

SEC("uprobe")
int BPF_KPROBE(ssl_rd_enter, void *ssl, void *buf)
{
	return enter(ssl, buf, 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_rd_exit, int ret)
{
	return leave(ret, 1);
}

/* int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written) */
SEC("uprobe")
int BPF_KPROBE(ssl_wrex_enter, void *ssl, void *buf, __u64 num, void *written)
{
	return enter(ssl, buf, written);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_wrex_exit, int ret)
{
	return leave(ret, 0);
}

SEC("uprobe")
int BPF_KPROBE(ssl_rdex_enter, void *ssl, void *buf, __u64 num, void *readbytes)
{
	return enter(ssl, buf, readbytes);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_rdex_exit, int ret)
{
	return leave(ret, 1);
}

static __always_inline int note_socket(struct sock *sk)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct call *c = bpf_map_lookup_elem(&calls, &tid);
	struct conn_key k = {};
	struct addrs a = {};

	if (!c) /* not inside an SSL call: the common case, and cheap */
		return 0;
	a.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	a.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	a.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (a.family == AF_INET) {
		BPF_CORE_READ_INTO(&a.saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO(&a.daddr, sk, __sk_common.skc_daddr);
	} else if (a.family == AF_INET6) {
		BPF_CORE_READ_INTO(&a.saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&a.daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		return 0;
	}
	k.tgid = id >> 32;
	k.ssl = c->ssl;
	bpf_map_update_elem(&conns, &k, &a, BPF_ANY);
	return 0;
}

/* Two ways in, the loader keeps the first that loads (bpf_program__set_autoload):
 * the sock_{send,recv}_length tracepoints (Linux 6.3+; above TCP, so kTLS is
 * covered too), else kprobes on tcp_sendmsg/tcp_recvmsg. With neither, chunks
 * come without addresses. (fentry was tried: refused with EPERM on a
 * locked-down 6.18 that takes tp_btf.) */
SEC("tp_btf/sock_send_length")
int BPF_PROG(ssl_sock_send, struct sock *sk)
{
	return note_socket(sk);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(ssl_sock_recv, struct sock *sk)
{
	return note_socket(sk);
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(ssl_tcp_send, struct sock *sk)
{
	return note_socket(sk);
}

SEC("kprobe/tcp_recvmsg")
int BPF_KPROBE(ssl_tcp_recv, struct sock *sk)
{
	return note_socket(sk);
}

char LICENSE[] SEC("license") = "GPL";
