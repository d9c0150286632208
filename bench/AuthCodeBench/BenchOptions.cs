using Identity.Bench;
using static Identity.Bench.BenchArgs;

namespace AuthCodeBench;

/// <summary>Command-line options (<c>--name value</c> pairs).</summary>
public sealed class BenchOptions
{
    public const string Usage = """
        AuthCodeBench: authorization-code round trips (authorize -> code -> token) for users with an SSO session.

          bench:  --base-url URL [--base-url URL2 ...] --client-id ID --client-secret SECRET --redirect-uri URI
                  --email EMAIL --password PASSWORD
                  [--sessions 50] [--warmup-seconds 5] [--seconds 15] [--scope "openid profile"]
                  [--rate R]   open loop: R round trips/s in all, spread evenly over the sessions (each session
                               starts one every sessions/R s); latency counts from the scheduled start, so a
                               server that falls behind is not hidden (no coordinated omission).
                               Without --rate: closed loop, each session starts the next round trip at once.
                  several --base-url: replicas of one authority behind no load balancer; session i authorizes at
                               replica i mod n and its code is redeemed at replica i+1 mod n (every code crosses
                               replicas); discovery is read from the first, its endpoints moved to each replica
                  [--server-pid PID ...] [--db-pid POSTMASTER_PID]   CPU split of the measured window (Linux
                               /proc); one --server-pid per replica, summed
                  [--metrics-url URL ...]   a server's Prometheus endpoint (management port /metrics), one per
                               replica: bytes allocated per round trip in the measured window, summed
                  [--session-cookie identity.session]   the SSO cookie the sign-in must leave (the peer's: _session)
                  [--window-file PATH]   written ("start") when the measured window begins, so that a profiler
                               (bench/authcode-bench.sh PROFILE=1) records exactly that window
          seed:   --seed-connection-string CS (PostgreSQL) [--seed-email EMAIL] [--seed-password PASSWORD]
                  creates the user if missing (run it after the server has migrated the database);
                  --seed-email/--seed-password default to --email/--password.

        With both --seed-connection-string and --base-url, it seeds and then runs the bench.
        Prints one line of key=value figures; exit code 0 = no errors, 1 = errors or no round trip, 2 = bad usage.
        """;

    public Uri? BaseUrl => BaseUrls.Count > 0 ? BaseUrls[0] : null;

    /// <summary>The authority's replicas (one unless several --base-url are given).</summary>
    public List<Uri> BaseUrls { get; } = [];

    public string ClientId { get; private set; } = "";

    public string ClientSecret { get; private set; } = "";

    public Uri? RedirectUri { get; private set; }

    public string Email { get; private set; } = "";

    public string Password { get; private set; } = "";

    public string Scope { get; private set; } = "openid profile";

    /// <summary>The name of the SSO session cookie the sign-in must leave in the browser.</summary>
    public string SessionCookie { get; private set; } = "identity.session";

    public int Sessions { get; private set; } = 50;

    public double WarmupSeconds { get; private set; } = 5;

    public double Seconds { get; private set; } = 15;

    /// <summary>Open-loop arrival rate (round trips/s over all sessions); null: closed loop.</summary>
    public double? Rate { get; private set; }

    /// <summary>The server processes whose CPU is counted (one per replica), summed.</summary>
    public List<int> ServerPids { get; } = [];

    public int? DbPid { get; private set; }

    /// <summary>The servers' Prometheus endpoints (one per replica), read for the bytes they allocate.</summary>
    public List<Uri> MetricsUrls { get; } = [];

    /// <summary>A file written when the measured window begins (for a profiler to start on); null: none.</summary>
    public string? WindowFile { get; private set; }

    public string? SeedConnectionString { get; private set; }

    public string? SeedEmail { get; private set; }

    public string? SeedPassword { get; private set; }

    public bool RunsBench => BaseUrl is not null;

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> with a readable message.</summary>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var o = new BenchOptions();
        BenchArgs.Parse(args, (name, value) =>
        {
            switch (name)
            {
                case "--base-url": o.BaseUrls.Add(AbsoluteUri(name, value.EndsWith('/') ? value : value + "/")); break;
                case "--client-id": o.ClientId = value; break;
                case "--client-secret": o.ClientSecret = value; break;
                case "--redirect-uri": o.RedirectUri = AbsoluteUri(name, value); break;
                case "--email": o.Email = value; break;
                case "--password": o.Password = value; break;
                case "--scope": o.Scope = value; break;
                case "--session-cookie": o.SessionCookie = value; break;
                case "--sessions": o.Sessions = (int)Number(name, value, 1, 10_000); break;
                case "--warmup-seconds": o.WarmupSeconds = Number(name, value, 0, 3600); break;
                case "--seconds": o.Seconds = Number(name, value, 0.1, 3600); break;
                case "--rate": o.Rate = Number(name, value, 0.1, 1_000_000); break;
                case "--server-pid": o.ServerPids.Add((int)Number(name, value, 1, int.MaxValue)); break;
                case "--metrics-url": o.MetricsUrls.Add(AbsoluteUri(name, value)); break;
                case "--db-pid": o.DbPid = (int)Number(name, value, 1, int.MaxValue); break;
                case "--window-file": o.WindowFile = value; break;
                case "--seed-connection-string": o.SeedConnectionString = value; break;
                case "--seed-email": o.SeedEmail = value; break;
                case "--seed-password": o.SeedPassword = value; break;
                default: throw new ArgumentException($"unknown option {name}");
            }
        });

        o.SeedEmail ??= o.Email.Length > 0 ? o.Email : null;
        o.SeedPassword ??= o.Password.Length > 0 ? o.Password : null;

        if (!o.RunsBench && o.SeedConnectionString is null)
        {
            throw new ArgumentException("give --base-url (bench) and/or --seed-connection-string (seed)");
        }

        if (o.SeedConnectionString is not null && (string.IsNullOrEmpty(o.SeedEmail) || string.IsNullOrEmpty(o.SeedPassword)))
        {
            throw new ArgumentException("seeding needs --seed-email and --seed-password (or --email and --password)");
        }

        if (o.RunsBench)
        {
            var missing = new List<string>();
            if (o.ClientId.Length == 0) missing.Add("--client-id");
            if (o.ClientSecret.Length == 0) missing.Add("--client-secret");
            if (o.RedirectUri is null) missing.Add("--redirect-uri");
            if (o.Email.Length == 0) missing.Add("--email");
            if (o.Password.Length == 0) missing.Add("--password");
            if (missing.Count > 0)
            {
                throw new ArgumentException("the bench needs " + string.Join(", ", missing));
            }
        }

        return o;
    }
}
