using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Identity.Bench;
using MtlsBench;

// Benchmark, not a test: client-credentials tokens per second over mutual TLS (RFC 8705), closed loop.
// See bench/README.md and bench/mtls-bench.sh.

if (BenchArgs.TryParse("MtlsBench", args, Options.Parse, Options.Usage) is not { } options)
{
    return 2;
}

using var certificate = options.CertificateFile is { } file
    ? X509CertificateLoader.LoadPkcs12(X509Certificate2.CreateFromPemFile(file, options.KeyFile).Export(X509ContentType.Pkcs12), null)
    : null;
using var pinned = X509CertificateLoader.LoadCertificateFromFile(options.ServerCertificateFile!);

if (options.Check)
{
    return await Check.RunAsync(options, certificate, pinned);
}

return await Load.RunAsync(options, certificate, pinned);

namespace MtlsBench
{
    /// <summary>The four ways of calling the token endpoint (bench/README.md, "mTLS client credentials").</summary>
    internal enum Mode
    {
        /// <summary>client_secret_basic over HTTPS, connections kept alive: the baseline without a client certificate.</summary>
        Plain,

        /// <summary>tls_client_auth, connections kept alive: one handshake per connection, then only requests.</summary>
        KeepAlive,

        /// <summary>tls_client_auth, a new connection per request that resumes the TLS session of an earlier one.</summary>
        Resume,

        /// <summary>tls_client_auth, a new connection and a full handshake (client certificate included) per request.</summary>
        Handshake,
    }

    internal sealed class Options
    {
        public const string Usage = """
            usage: MtlsBench --token-url URL --client-id ID --server-cert PEM --mode plain|keepalive|resume|handshake
                             [--cert PEM --key PEM] [--secret S] [--scope S] [--workers 32] [--warmup-s 5] [--seconds 15]
                             [--server-pid PID] [--check true --issuer URL]
            """;

        public Uri? TokenUrl { get; private set; }

        public string ClientId { get; private set; } = "";

        public string? Secret { get; private set; }

        public string Scope { get; private set; } = "api:read";

        public string? CertificateFile { get; private set; }

        public string? KeyFile { get; private set; }

        public string? ServerCertificateFile { get; private set; }

        public Mode Mode { get; private set; } = Mode.KeepAlive;

        public int Workers { get; private set; } = 32;

        public double WarmupSeconds { get; private set; } = 5;

        public double Seconds { get; private set; } = 15;

        public int? ServerPid { get; private set; }

        public bool Check { get; private set; }

        public string? Issuer { get; private set; }

        public bool UsesCertificate => Mode != Mode.Plain;

        public static Options Parse(IReadOnlyList<string> args)
        {
            var o = new Options();
            BenchArgs.Parse(args, (name, value) =>
            {
                switch (name)
                {
                    case "--token-url": o.TokenUrl = BenchArgs.AbsoluteUri(name, value); break;
                    case "--client-id": o.ClientId = value; break;
                    case "--secret": o.Secret = value; break;
                    case "--scope": o.Scope = value; break;
                    case "--cert": o.CertificateFile = value; break;
                    case "--key": o.KeyFile = value; break;
                    case "--server-cert": o.ServerCertificateFile = value; break;
                    case "--mode":
                        o.Mode = Enum.TryParse<Mode>(value, ignoreCase: true, out var mode)
                            ? mode
                            : throw new ArgumentException($"--mode: '{value}' is not plain, keepalive, resume or handshake");
                        break;
                    case "--workers": o.Workers = (int)BenchArgs.Number(name, value, 1, 1024); break;
                    case "--warmup-s": o.WarmupSeconds = BenchArgs.Number(name, value, 0, 3600); break;
                    case "--seconds": o.Seconds = BenchArgs.Number(name, value, 0.5, 3600); break;
                    case "--server-pid": o.ServerPid = (int)BenchArgs.Number(name, value, 1, int.MaxValue); break;
                    case "--check": o.Check = bool.Parse(value); break;
                    case "--issuer": o.Issuer = value; break;
                    default: throw new ArgumentException($"unknown option {name}");
                }
            });
            if (o.TokenUrl is null || o.ClientId.Length == 0 || o.ServerCertificateFile is null)
            {
                throw new ArgumentException("--token-url, --client-id and --server-cert are required");
            }

            if (o.UsesCertificate && o.CertificateFile is null)
            {
                throw new ArgumentException($"--mode {o.Mode} needs --cert (and --key)");
            }

            if (!o.UsesCertificate && o.Secret is null)
            {
                throw new ArgumentException("--mode plain needs --secret");
            }

            if (o.Check && o.Issuer is null)
            {
                throw new ArgumentException("--check needs --issuer");
            }

            return o;
        }
    }

    internal static class Http
    {
        /// <summary>
        /// The handler of a mode: the server's certificate is pinned (the bench's own CA made it); the client certificate
        /// is offered when the server asks for one; <see cref="Mode.Resume"/> and <see cref="Mode.Handshake"/> close the
        /// connection after each response, the latter with TLS session resumption off on the client.
        /// </summary>
        public static HttpClient Client(Options options, X509Certificate2? certificate, X509Certificate2 pinned)
        {
            var pin = pinned.GetCertHash(HashAlgorithmName.SHA256);
            var newConnectionPerRequest = options.Mode is Mode.Resume or Mode.Handshake;
            var handler = new SocketsHttpHandler
            {
                MaxConnectionsPerServer = options.Workers,
                PooledConnectionLifetime = newConnectionPerRequest ? TimeSpan.Zero : Timeout.InfiniteTimeSpan,
                SslOptions = new SslClientAuthenticationOptions
                {
                    RemoteCertificateValidationCallback = (_, presented, _, _) =>
                        presented is not null && presented.GetCertHash(HashAlgorithmName.SHA256).AsSpan().SequenceEqual(pin),
                    ClientCertificates = options.UsesCertificate ? [certificate!] : null,
                    AllowTlsResume = options.Mode != Mode.Handshake,
                },
            };
            var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
            if (options.Secret is { } secret && !options.UsesCertificate)
            {
                // RFC 6749 §2.3.1: both parts form-urlencoded before Basic.
                var basic = $"{Uri.EscapeDataString(options.ClientId)}:{Uri.EscapeDataString(secret)}";
                client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(basic)));
            }

            return client;
        }

        public static HttpRequestMessage TokenRequest(Options options)
        {
            var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = options.Scope };
            if (options.UsesCertificate)
            {
                form["client_id"] = options.ClientId; // RFC 8705 §2: the client identifies itself, the certificate authenticates it
            }

            var request = new HttpRequestMessage(HttpMethod.Post, options.TokenUrl) { Content = new FormUrlEncodedContent(form) };
            if (options.Mode is Mode.Resume or Mode.Handshake)
            {
                request.Headers.ConnectionClose = true;
            }

            return request;
        }
    }

    /// <summary>
    /// One token before the load: 200, a compact JWS signed ES256 that verifies against the discovered JWKS, the expected
    /// issuer and client, and with a certificate <c>cnf.x5t#S256</c> equal to the certificate's SHA-256 thumbprint
    /// (RFC 8705 §3.1), computed here from the certificate file.
    /// </summary>
    internal static class Check
    {
        public static async Task<int> RunAsync(Options options, X509Certificate2? certificate, X509Certificate2 pinned)
        {
            try
            {
                using var client = Http.Client(options, certificate, pinned);
                using var response = await client.SendAsync(Http.TokenRequest(options));
                var body = await response.Content.ReadAsStringAsync();
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    throw new InvalidOperationException($"token_http_{(int)response.StatusCode}:{Flatten(body)}");
                }

                var token = JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
                var parts = token.Split('.');
                if (parts.Length != 3)
                {
                    throw new InvalidOperationException("not_a_jws");
                }

                using var header = JsonDocument.Parse(Base64Url(parts[0]));
                using var payload = JsonDocument.Parse(Base64Url(parts[1]));
                var alg = header.RootElement.GetProperty("alg").GetString();
                if (alg != "ES256")
                {
                    throw new InvalidOperationException($"alg={alg}");
                }

                var kid = header.RootElement.GetProperty("kid").GetString();
                using var discovery = JsonDocument.Parse(await client.GetStringAsync($"{options.Issuer!.TrimEnd('/')}/.well-known/openid-configuration"));
                using var jwks = JsonDocument.Parse(await client.GetStringAsync(discovery.RootElement.GetProperty("jwks_uri").GetString()));
                var jwk = jwks.RootElement.GetProperty("keys").EnumerateArray()
                    .FirstOrDefault(k => k.TryGetProperty("kid", out var id) && id.GetString() == kid);
                if (jwk.ValueKind != JsonValueKind.Object)
                {
                    throw new InvalidOperationException($"kid_{kid}_not_in_jwks");
                }

                using var key = ECDsa.Create(new ECParameters
                {
                    Curve = ECCurve.NamedCurves.nistP256,
                    Q = new ECPoint { X = Base64Url(jwk.GetProperty("x").GetString()!), Y = Base64Url(jwk.GetProperty("y").GetString()!) },
                });
                if (!key.VerifyData(Encoding.ASCII.GetBytes($"{parts[0]}.{parts[1]}"), Base64Url(parts[2]), HashAlgorithmName.SHA256))
                {
                    throw new InvalidOperationException("bad_signature");
                }

                var claims = payload.RootElement;
                if (claims.GetProperty("iss").GetString() != options.Issuer)
                {
                    throw new InvalidOperationException($"iss={claims.GetProperty("iss").GetString()}");
                }

                var clientId = claims.TryGetProperty("client_id", out var cid) ? cid.GetString() : null;
                if (clientId != options.ClientId)
                {
                    throw new InvalidOperationException($"client_id={clientId}");
                }

                var bound = claims.TryGetProperty("cnf", out var cnf) && cnf.TryGetProperty("x5t#S256", out var x5t) ? x5t.GetString() : null;
                var expected = certificate is null ? null : Base64UrlEncode(SHA256.HashData(certificate.RawData));
                if (bound != expected)
                {
                    throw new InvalidOperationException($"cnf.x5t#S256={bound ?? "none"}_expected_{expected ?? "none"}");
                }

                Console.WriteLine($"jwt_verified=ok alg={alg} token_bytes={token.Length} cnf_x5t_s256={(bound is null ? "none" : "matches_certificate")}");
                return 0;
            }
            catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException or JsonException or KeyNotFoundException
                or FormatException or CryptographicException or TaskCanceledException)
            {
                Console.WriteLine($"jwt_verified=FAILED reason={Flatten(ex.Message)}");
                return 1;
            }
        }

        private static string Flatten(string s) => string.Join('_', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

        private static byte[] Base64Url(string s) => Convert.FromBase64String(
            s.Replace('-', '+').Replace('_', '/') + new string('=', (4 - (s.Length % 4)) % 4));

        private static string Base64UrlEncode(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>Closed loop: each worker sends a token request, waits for the answer, sends the next.</summary>
    internal static class Load
    {
        public static async Task<int> RunAsync(Options options, X509Certificate2? certificate, X509Certificate2 pinned)
        {
            using var client = Http.Client(options, certificate, pinned);
            var frequency = (double)Stopwatch.Frequency;
            var start = Stopwatch.GetTimestamp();
            var warmupEnd = start + (long)(options.WarmupSeconds * frequency);
            var end = warmupEnd + (long)(options.Seconds * frequency);
            var recorders = Enumerable.Range(0, options.Workers).Select(_ => new Recorder()).ToArray();
            var workers = recorders.Select(r => Task.Run(() => WorkAsync(client, options, r, warmupEnd, end))).ToArray();

            await Task.Delay(Remaining(warmupEnd));
            var cpu0 = Cpu.Take(options);
            await Task.Delay(Remaining(end));
            var cpu1 = Cpu.Take(options);
            await Task.WhenAll(workers);

            var latencies = recorders.SelectMany(r => r.Latencies).Order().ToArray();
            var ok = latencies.Length;
            var errors = recorders.Sum(r => r.Errors);
            var elapsed = cpu1.Wall - cpu0.Wall;
            string Pct(double q) => ok == 0 ? "n/a" : (latencies[Math.Min(ok - 1, (int)(q * ok))] * 1000 / frequency).ToString("F2", CultureInfo.InvariantCulture);
            string Share(double a, double b) => ((b - a) * 100 / elapsed).ToString("F0", CultureInfo.InvariantCulture);
            var server = cpu1.Server - cpu0.Server;
            var self = cpu1.Self - cpu0.Self;
            var other = (cpu1.Machine - cpu0.Machine) - server - self;
            var line = string.Join(' ',
                $"tokens_per_s={(ok / elapsed).ToString("F1", CultureInfo.InvariantCulture)}",
                $"p50_ms={Pct(0.50)} p99_ms={Pct(0.99)} errors={errors}",
                $"mode={options.Mode.ToString().ToLowerInvariant()} requests={ok + errors} duration_s={elapsed.ToString("F2", CultureInfo.InvariantCulture)}",
                $"workers={options.Workers} warmup_s={options.WarmupSeconds.ToString(CultureInfo.InvariantCulture)}",
                $"server_cpu_pct={Share(cpu0.Server, cpu1.Server)} bench_cpu_pct={Share(cpu0.Self, cpu1.Self)}",
                $"other_cpu_pct={(other * 100 / elapsed).ToString("F0", CultureInfo.InvariantCulture)}",
                $"server_cpu_us_per_token={(ok == 0 ? "n/a" : (server * 1e6 / ok).ToString("F0", CultureInfo.InvariantCulture))}",
                $"bench_cpu_us_per_request={(ok + errors == 0 ? "n/a" : (self * 1e6 / (ok + errors)).ToString("F0", CultureInfo.InvariantCulture))}",
                $"error_kinds={(errors == 0 ? "none" : string.Join(',', recorders.SelectMany(r => r.Kinds).GroupBy(k => k).Select(g => $"{g.Key}:{g.Count()}")))}");
            Console.WriteLine(line);
            return errors == 0 && ok > 0 ? 0 : 1;
        }

        private static async Task WorkAsync(HttpClient client, Options options, Recorder recorder, long warmupEnd, long end)
        {
            while (true)
            {
                var t0 = Stopwatch.GetTimestamp();
                if (t0 >= end)
                {
                    return;
                }

                string? error = null;
                try
                {
                    using var response = await client.SendAsync(Http.TokenRequest(options));
                    var body = await response.Content.ReadAsByteArrayAsync();
                    if (response.StatusCode != HttpStatusCode.OK)
                    {
                        error = $"http_{(int)response.StatusCode}";
                    }
                    else if (body.AsSpan().IndexOf("\"access_token\""u8) < 0)
                    {
                        error = "no_access_token";
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or IOException)
                {
                    error = ex.GetType().Name;
                }

                var t1 = Stopwatch.GetTimestamp();
                if (t0 >= warmupEnd && t1 <= end)
                {
                    recorder.Record(t1 - t0, error);
                }
            }
        }

        private static TimeSpan Remaining(long until) =>
            TimeSpan.FromSeconds(Math.Max(0, (until - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency));
    }

    internal sealed class Recorder
    {
        public List<long> Latencies { get; } = new(4096);

        public List<string> Kinds { get; } = [];

        public int Errors => Kinds.Count;

        public void Record(long ticks, string? error)
        {
            if (error is null)
            {
                Latencies.Add(ticks);
            }
            else
            {
                Kinds.Add(error);
            }
        }
    }

    /// <summary>CPU seconds so far: the server (with its children: the peer's cluster workers), this process, the machine.</summary>
    internal readonly record struct Cpu(double Wall, double Server, double Self, double Machine)
    {
        public static Cpu Take(Options options) => new(
            Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency,
            options.ServerPid is { } pid ? ProcCpu.ProcessTree(pid) : 0,
            ProcCpu.Process(Environment.ProcessId),
            ProcCpu.MachineBusy());
    }
}
