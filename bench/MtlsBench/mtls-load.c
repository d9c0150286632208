// Benchmark, not a test: the load generator of bench/mtls-bench.sh (GENERATOR=c, the default). Client-credentials
// token requests over HTTPS, closed loop, on OpenSSL directly so that the generator costs little of the CPU it shares
// with the server it measures (the Node and .NET generators cost more per connection than the server did).
//
// Modes (as bench/mtls-bench.sh names them):
//   plain     client_secret_basic (RFC 6749 §2.3.1), no client certificate, connections kept alive
//   keepalive tls_client_auth (RFC 8705 §2.1: the client certificate, client_id in the form), connections kept alive
//   resume    tls_client_auth, a new TCP connection per request that resumes the worker's last TLS session
//             (SSL_set_session; RFC 8446 §2.2), counted resumed or not per connection
//   handshake tls_client_auth, a new TCP connection and a full handshake per request
//
//   mtls-load --mode MODE --host 127.0.0.1 --port N --path /connect/token --client-id ID --server-cert PEM
//             [--cert PEM --key PEM] [--secret S] [--scope api:read] [--workers 32] [--warmup-s 5] [--seconds 15]
//             [--server-pid PID] [--min-resumed 0.9]
//
// Closed loop: each of WORKERS threads sends a request, reads the whole answer, sends the next. Only 200 answers with
// an access_token count as tokens. A new connection's server certificate must be the one of --server-cert (a pin, as
// resume-load.mjs does; a resumed session was made by a pinned full handshake, and only that server holds its key).
// Prints one key=value line with the keys of resume-load.mjs (tokens_per_s, p50_ms, p99_ms, errors, the CPU split,
// resumed_ratio ...) plus bench_cpu_us_per_request and connections_per_s. In resume mode it reports no figure
// (tokens_per_s=n/a, resumption=FAILED, exit 1) when fewer than --min-resumed of the measured connections resumed.
// Exit code 0 only with tokens, no errors and (resume) enough resumptions; 2 on bad arguments.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum mode { PLAIN, KEEPALIVE, RESUME, HANDSHAKE };
static const char *const MODE_NAMES[] = {"plain", "keepalive", "resume", "handshake"};

static struct {
    enum mode mode;
    const char *host, *path, *client_id, *cert, *key, *server_cert, *secret, *scope;
    int port, workers, server_pid;
    double warmup_s, seconds, min_resumed;
} o = {.mode = RESUME, .host = "127.0.0.1", .path = "/connect/token", .scope = "api:read",
       .workers = 32, .warmup_s = 5, .seconds = 15, .min_resumed = 0.9};

static SSL_CTX *ctx;
static X509 *pinned;
static struct sockaddr_in server_addr;
static char request[4096];
static size_t request_len;
static double t_start, t_warmup_end, t_end;
static atomic_long unpinned; // warm-up included: an unpinned server's session must not be resumed unnoticed later

// Error kinds, counted per worker within the measured window.
enum err { E_CONNECT, E_TLS, E_WRITE, E_READ, E_HTTP, E_NO_TOKEN, E_UNPINNED, E_COUNT };
static const char *const ERR_NAMES[] = {"connect", "tls_handshake", "write", "read", "http_status", "no_access_token",
                                        "server_certificate_not_pinned"};

struct worker {
    pthread_t thread;
    SSL_SESSION *session; // the last session the server gave this worker (resume mode)
    double *latencies;
    size_t count, capacity;
    long resumed, full, errors[E_COUNT];
    int last_status;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "mtls-load: %s\n", what);
    exit(2);
}

// --- Arguments. ---
static double number(const char *name, const char *v, double min, double max) {
    char *end;
    double n = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || n < min || n > max) {
        fprintf(stderr, "mtls-load: %s: '%s' is not a number in [%g, %g]\n", name, v, min, max);
        exit(2);
    }
    return n;
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            fprintf(stderr, "mtls-load: missing value after %s\n", k);
            exit(2);
        }
        if (!strcmp(k, "--mode")) {
            int found = 0;
            for (int m = PLAIN; m <= HANDSHAKE; m++) {
                if (!strcmp(v, MODE_NAMES[m])) { o.mode = (enum mode)m; found = 1; }
            }
            if (!found) die("--mode: plain, keepalive, resume or handshake");
        } else if (!strcmp(k, "--host")) o.host = v;
        else if (!strcmp(k, "--port")) o.port = (int)number(k, v, 1, 65535);
        else if (!strcmp(k, "--path")) o.path = v;
        else if (!strcmp(k, "--client-id")) o.client_id = v;
        else if (!strcmp(k, "--cert")) o.cert = v;
        else if (!strcmp(k, "--key")) o.key = v;
        else if (!strcmp(k, "--server-cert")) o.server_cert = v;
        else if (!strcmp(k, "--secret")) o.secret = v;
        else if (!strcmp(k, "--scope")) o.scope = v;
        else if (!strcmp(k, "--workers")) o.workers = (int)number(k, v, 1, 1024);
        else if (!strcmp(k, "--warmup-s")) o.warmup_s = number(k, v, 0, 3600);
        else if (!strcmp(k, "--seconds")) o.seconds = number(k, v, 0.5, 3600);
        else if (!strcmp(k, "--server-pid")) o.server_pid = (int)number(k, v, 1, 2147483647);
        else if (!strcmp(k, "--min-resumed")) o.min_resumed = number(k, v, 0, 1);
        else {
            fprintf(stderr, "mtls-load: unknown option %s\n", k);
            exit(2);
        }
    }
    if (!o.port || !o.client_id || !o.server_cert) die("--port, --client-id and --server-cert are required");
    if (o.mode == PLAIN ? !o.secret : (!o.cert || !o.key)) die("plain needs --secret; the other modes --cert and --key");
}

// --- CPU seconds from /proc, as bench/Shared/ProcCpu.cs and resume-load.mjs: a process tree, the whole machine. ---
static long clk_tck;

// Fields 4 (ppid), 14-17 (utime, stime, cutime, cstime) of /proc/PID/stat; 0 when the process is gone.
static int stat_of(int pid, int *ppid, double *cpu) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); // comm may hold spaces
    if (!p) return 0;
    long v[18] = {0};
    int field = 3;
    for (char *tok = strtok(p + 2, " "); tok && field <= 17; tok = strtok(NULL, " "), field++) v[field] = atol(tok);
    *ppid = (int)v[4];
    *cpu = (double)(v[14] + v[15] + v[16] + v[17]) / (double)clk_tck;
    return 1;
}

static double tree_cpu(int root) {
    int ppid;
    double total;
    if (!root || !stat_of(root, &ppid, &total)) return 0;
    // Descendants: collect every (pid, ppid), then walk down from root.
    int cap = 4096, n = 0, *pids = malloc(sizeof(int) * (size_t)cap), *parents = malloc(sizeof(int) * (size_t)cap);
    double *cpus = malloc(sizeof(double) * (size_t)cap);
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!isdigit((unsigned char)e->d_name[0]) || n == cap) continue;
        int pid = atoi(e->d_name);
        if (pid != root && stat_of(pid, &parents[n], &cpus[n])) pids[n++] = pid;
    }
    if (d) closedir(d);
    int *stack = malloc(sizeof(int) * (size_t)(n + 1)), top = 0;
    stack[top++] = root;
    while (top) {
        int parent = stack[--top];
        for (int i = 0; i < n; i++) {
            if (parents[i] == parent) { total += cpus[i]; stack[top++] = pids[i]; parents[i] = -1; }
        }
    }
    free(stack); free(pids); free(parents); free(cpus);
    return total;
}

static double machine_busy(void) {
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    int read = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (read < 8) return 0;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)clk_tck; // user nice system irq softirq steal
}

static double self_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct cpu { double wall, server, self, machine; };
static struct cpu cpu_now(void) {
    return (struct cpu){now_s(), tree_cpu(o.server_pid), self_cpu(), machine_busy()};
}

// --- TLS and HTTP. ---
static int new_session(SSL *ssl, SSL_SESSION *session) {
    struct worker *w = SSL_get_app_data(ssl);
    if (!w || !SSL_SESSION_is_resumable(session)) return 0;
    if (w->session) SSL_SESSION_free(w->session);
    w->session = session; // keeps the reference OpenSSL handed over (return 1)
    return 1;
}

// application/x-www-form-urlencoded (as the other generators send it): unreserved characters as they are, others %XX.
static const char *form_encode(const char *v, char *out, size_t size) {
    size_t at = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p && at + 4 < size; p++) {
        if (isalnum(*p) || strchr("-._~", *p)) out[at++] = (char)*p;
        else at += (size_t)snprintf(out + at, size - at, "%%%02X", *p);
    }
    out[at] = '\0';
    return out;
}

static void setup(void) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // Kestrel closes a Connection: close connection without a close_notify; OpenSSL 3 takes that for a fatal error and
    // forgets the connection's session (not resumable). The answer was complete by its Content-Length already.
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); // the server certificate is pinned instead (below)
    if (o.mode != PLAIN) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o.cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, o.key, SSL_FILETYPE_PEM) != 1
            || SSL_CTX_check_private_key(ctx) != 1) {
            ERR_print_errors_fp(stderr);
            die("cannot load --cert/--key");
        }
    }
    // Tickets go to new_session (per worker), not to OpenSSL's internal client cache.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session);

    FILE *f = fopen(o.server_cert, "r");
    if (!f || !(pinned = PEM_read_X509(f, NULL, NULL, NULL))) die("cannot read --server-cert");
    fclose(f);

    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(o.host, NULL, &hints, &res) != 0) die("cannot resolve --host");
    server_addr = *(struct sockaddr_in *)res->ai_addr;
    server_addr.sin_port = htons((uint16_t)o.port);
    freeaddrinfo(res);

    char body[1024], auth[800] = "";
    char encoded[256];
    int body_len = snprintf(body, sizeof body, "grant_type=client_credentials&scope=%s", form_encode(o.scope, encoded, sizeof encoded));
    if (o.mode == PLAIN) {
        // RFC 6749 §2.3.1: Basic with client_id:secret (the bench's ids and secrets are URL-safe already).
        char pair[512];
        int pair_len = snprintf(pair, sizeof pair, "%s:%s", o.client_id, o.secret);
        unsigned char b64[700];
        EVP_EncodeBlock(b64, (unsigned char *)pair, pair_len);
        snprintf(auth, sizeof auth, "Authorization: Basic %s\r\n", b64);
    } else {
        body_len += snprintf(body + body_len, sizeof body - (size_t)body_len, "&client_id=%s", // RFC 8705 §2
                             form_encode(o.client_id, encoded, sizeof encoded));
    }
    int keep = o.mode == PLAIN || o.mode == KEEPALIVE;
    request_len = (size_t)snprintf(request, sizeof request,
        "POST %s HTTP/1.1\r\nHost: %s:%d\r\n%sContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
        "Connection: %s\r\n\r\n%s", o.path, o.host, o.port, auth, body_len, keep ? "keep-alive" : "close", body);
}

struct conn { int fd; SSL *ssl; };

// clean: the exchange ended well. Without a shutdown mark, SSL_free marks the connection's session (in TLS 1.3 the
// last ticket's, the one kept for the next connection) not resumable; the mark sends nothing (the server closes).
static void conn_close(struct conn *c, int clean) {
    if (c->ssl && clean) SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    if (c->ssl) SSL_free(c->ssl);
    if (c->fd >= 0) close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

// A new connection (offering the worker's session in resume mode); an error kind, or -1.
static int conn_open(struct worker *w, struct conn *c, int *resumed) {
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) return E_CONNECT;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval timeout = {.tv_sec = 30};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect(c->fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0) return E_CONNECT;
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_app_data(c->ssl, w);
    if (o.mode == RESUME && w->session) SSL_set_session(c->ssl, w->session);
    if (SSL_connect(c->ssl) != 1) {
        ERR_clear_error();
        return E_TLS;
    }
    *resumed = SSL_session_reused(c->ssl);
    if (!*resumed) {
        X509 *peer = SSL_get1_peer_certificate(c->ssl);
        int same = peer && X509_cmp(peer, pinned) == 0;
        X509_free(peer);
        if (!same) {
            atomic_fetch_add(&unpinned, 1);
            return E_UNPINNED;
        }
    }
    return -1;
}

// Sends the request and reads one whole answer (Content-Length); an error kind, or -1 for a 200 with an access_token.
// *server_closes: the answer said Connection: close.
static int exchange(struct worker *w, struct conn *c, int *server_closes) {
    if (SSL_write(c->ssl, request, (int)request_len) != (int)request_len) return E_WRITE;
    char buf[16384];
    size_t len = 0;
    char *body = NULL;
    long content_length = -1;
    for (;;) {
        if (len == sizeof buf - 1) return E_READ;
        int n = SSL_read(c->ssl, buf + len, (int)(sizeof buf - 1 - len));
        if (n <= 0) {
            ERR_clear_error();
            return E_READ;
        }
        len += (size_t)n;
        buf[len] = '\0';
        if (!body) {
            char *end = strstr(buf, "\r\n\r\n");
            if (!end) continue;
            body = end + 4;
            w->last_status = atoi(buf + 9); // "HTTP/1.1 200 ..."
            for (char *line = strstr(buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
                if (!strncasecmp(line + 2, "content-length:", 15)) content_length = atol(line + 17);
                if (!strncasecmp(line + 2, "connection: close", 17)) *server_closes = 1;
            }
            if (content_length < 0) return E_READ; // the token endpoint always answers with a length
        }
        if ((long)(buf + len - body) >= content_length) break;
    }
    if (w->last_status != 200) return E_HTTP;
    return memmem(body, (size_t)content_length, "\"access_token\"", 14) ? -1 : E_NO_TOKEN;
}

// A new-connection mode: after the answer, read to the server's close, so that the server closes first (as with
// Connection: close it does) and its last TLS records (tickets) are read.
static void drain(struct conn *c) {
    char buf[4096];
    while (SSL_read(c->ssl, buf, sizeof buf) > 0) {}
    ERR_clear_error();
}

static void record(struct worker *w, double t0, double t1, int error, int new_conn, int resumed) {
    if (t0 < t_warmup_end || t1 > t_end) return;
    if (new_conn && o.mode == RESUME) {
        if (resumed) w->resumed++; else w->full++;
    }
    if (error >= 0) {
        w->errors[error]++;
        return;
    }
    if (w->count == w->capacity) {
        w->capacity = w->capacity ? w->capacity * 2 : 4096;
        w->latencies = realloc(w->latencies, w->capacity * sizeof(double));
    }
    w->latencies[w->count++] = (t1 - t0) * 1000;
}

static void *work(void *arg) {
    struct worker *w = arg;
    struct conn c = {.fd = -1};
    int keep = o.mode == PLAIN || o.mode == KEEPALIVE;
    for (;;) {
        double t0 = now_s();
        if (t0 >= t_end) break;
        int resumed = 0, new_conn = c.ssl == NULL, error = -1, server_closes = !keep;
        if (new_conn) error = conn_open(w, &c, &resumed);
        if (error < 0) error = exchange(w, &c, &server_closes);
        if (error < 0 && server_closes) drain(&c);
        double t1 = now_s();
        record(w, t0, t1, error, new_conn, resumed);
        if (error >= 0 || server_closes) conn_close(&c, error < 0);
        if (error == E_CONNECT || error == E_TLS) usleep(10000); // do not spin on a refusing server
    }
    conn_close(&c, 0);
    return NULL;
}

static void sleep_until(double t) {
    double d = t - now_s();
    if (d > 0) {
        struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    clk_tck = sysconf(_SC_CLK_TCK);
    signal(SIGPIPE, SIG_IGN); // a write to a connection the server closed is an error, not the end of the run
    setup();
    struct worker *workers = calloc((size_t)o.workers, sizeof *workers);
    t_start = now_s();
    t_warmup_end = t_start + o.warmup_s;
    t_end = t_warmup_end + o.seconds;
    for (int i = 0; i < o.workers; i++) pthread_create(&workers[i].thread, NULL, work, &workers[i]);
    sleep_until(t_warmup_end);
    struct cpu c0 = cpu_now();
    sleep_until(t_end);
    struct cpu c1 = cpu_now();
    for (int i = 0; i < o.workers; i++) pthread_join(workers[i].thread, NULL);

    size_t ok = 0;
    long resumed = 0, full = 0, errors[E_COUNT] = {0}, error_total = 0;
    for (int i = 0; i < o.workers; i++) ok += workers[i].count;
    double *all = malloc(sizeof(double) * (ok ? ok : 1));
    size_t k = 0;
    for (int i = 0; i < o.workers; i++) {
        struct worker *w = &workers[i];
        memcpy(all + k, w->latencies, w->count * sizeof(double));
        k += w->count;
        resumed += w->resumed;
        full += w->full;
        for (int e = 0; e < E_COUNT; e++) { errors[e] += w->errors[e]; error_total += w->errors[e]; }
    }
    qsort(all, ok, sizeof(double), compare);
    double elapsed = c1.wall - c0.wall, server = c1.server - c0.server, self = c1.self - c0.self;
    double other = (c1.machine - c0.machine) - server - self;
    long measured = resumed + full;
    double ratio = measured ? (double)resumed / (double)measured : 0;
    int resumption_ok = o.mode != RESUME || (measured > 0 && ratio >= o.min_resumed && atomic_load(&unpinned) == 0);
    long requests = (long)ok + error_total;

    char p50[32] = "n/a", p99[32] = "n/a", figure[32] = "n/a", per_token[32] = "n/a", per_request[32] = "n/a";
    if (ok) {
        snprintf(p50, sizeof p50, "%.2f", all[(size_t)(0.5 * (double)ok) < ok ? (size_t)(0.5 * (double)ok) : ok - 1]);
        snprintf(p99, sizeof p99, "%.2f", all[(size_t)(0.99 * (double)ok) < ok ? (size_t)(0.99 * (double)ok) : ok - 1]);
        snprintf(per_token, sizeof per_token, "%.0f", server * 1e6 / (double)ok);
        if (resumption_ok) snprintf(figure, sizeof figure, "%.1f", (double)ok / elapsed);
    }
    if (requests) snprintf(per_request, sizeof per_request, "%.0f", self * 1e6 / (double)requests);
    char kinds[512] = "none";
    if (error_total) {
        size_t at = 0;
        for (int e = 0; e < E_COUNT; e++) {
            if (errors[e]) at += (size_t)snprintf(kinds + at, sizeof kinds - at, "%s%s:%ld", at ? "," : "", ERR_NAMES[e], errors[e]);
        }
    }
    printf("tokens_per_s=%s p50_ms=%s p99_ms=%s errors=%ld mode=%s requests=%ld duration_s=%.2f workers=%d warmup_s=%g"
           " server_cpu_pct=%.0f bench_cpu_pct=%.0f other_cpu_pct=%.0f server_cpu_us_per_token=%s bench_cpu_us_per_request=%s"
           " error_kinds=%s", figure, p50, p99, error_total, MODE_NAMES[o.mode], requests, elapsed, o.workers, o.warmup_s,
           server * 100 / elapsed, self * 100 / elapsed, other * 100 / elapsed, per_token, per_request, kinds);
    if (o.mode == RESUME) {
        printf(" resumed_ratio=%.3f full_handshakes=%ld unpinned_server=%ld resumption=%s", ratio, full,
               atomic_load(&unpinned), resumption_ok ? "ok" : "FAILED");
    }
    printf(" load_generator=c openssl=\"%s\"\n", OpenSSL_version(OPENSSL_VERSION));
    return error_total == 0 && ok > 0 && resumption_ok ? 0 : 1;
}
