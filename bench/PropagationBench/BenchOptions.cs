using Identity.Bench;
using static Identity.Bench.BenchArgs;

namespace PropagationBench;

/// <summary>Command-line options (<c>--name value</c> pairs).</summary>
public sealed class BenchOptions
{
    public const string Usage = """
        PropagationBench: propagation latency of user changes (committed in the authority's PostgreSQL database ->
        applied in a regional replica) with two regions consuming, and sustained changes/s.

          --connection-string CS   the authority's PostgreSQL database (migrated by the server)
          --broker-port PORT       the private RabbitMQ's AMQPS port on 127.0.0.1 (mutual TLS)
          --certs DIR              its certificates: ca.pem, region-<r>.pfx
          --authority URL          the server (the regions' initial resync uses its sync API)
          --region-secret SECRET   the secret of the clients region-<r> declared in the server
          --work-dir DIR           where the regions' SQLite replicas go
          [--regions "eu us"] [--users 200] [--rate 500] [--seconds 20] [--warmup-seconds 5] [--writers 40]
          [--changes-per-commit 1] users changed per transaction (one UserChanged each): N > 1 makes the writers and the
                                   authority's database cheaper per change, for a rate the machine cannot write one by one
          [--writer operation]     operation: each change is the user operation the admin API's PATCH runs
                                   (UserOperations.ChangeProfileAsync: unit of work, user manager, audit entry, outbox);
                                   direct: the context and the outbox interceptor's safety net only (the bench before
                                   2026-12-05; the only writer for --changes-per-commit N > 1)
          [--drain-seconds 60]     how long to wait for the replicas to catch up after the run
          [--as-region R]          internal: run as region R's process (started by the bench itself, one per region)
          [--poll-interval TEXT]   the server's Outbox:PollInterval, only printed in the result line
          [--server-pid PID] [--db-pid POSTMASTER_PID] [--broker-pid PID]   CPU split of the measured window (/proc)

        Write-path loop (bench/write-path-profile.sh): --connection-string and --loop N only: no broker, no regions, no
        server running (it migrated the database): N changes by --writers writers as fast as they go, after
        --warmup-changes (2000); prints the writers' allocated bytes, statements (commands sent) and CPU per change
        (this process, and PostgreSQL with --db-pid). [--window-file PATH] is written when the measured part begins.

        Prints one line of key=value figures; exit code 0 = nothing lost, 1 = lost changes or errors, 2 = bad usage.
        """;

    public string ConnectionString { get; private set; } = "";

    public int BrokerPort { get; private set; }

    public string CertsDir { get; private set; } = "";

    public Uri? Authority { get; private set; }

    public string RegionSecret { get; private set; } = "";

    public string WorkDir { get; private set; } = "";

    public IReadOnlyList<string> Regions { get; private set; } = ["eu", "us"];

    public int Users { get; private set; } = 200;

    public double Rate { get; private set; } = 500;

    public double Seconds { get; private set; } = 20;

    public double WarmupSeconds { get; private set; } = 5;

    public int Writers { get; private set; } = 40;

    public double DrainSeconds { get; private set; } = 60;

    public int ChangesPerCommit { get; private set; } = 1;

    public BenchWriter Writer { get; private set; } = BenchWriter.Operation;

    public string PollInterval { get; private set; } = "unknown";

    /// <summary>Set in a region's own process (<see cref="RemoteRegion"/>): the region it hosts.</summary>
    public string? AsRegion { get; private set; }

    /// <summary>The arguments as given, for the regions' processes.</summary>
    public IReadOnlyList<string> Args { get; private set; } = [];

    public int? ServerPid { get; private set; }

    public int? DbPid { get; private set; }

    public int? BrokerPid { get; private set; }

    /// <summary>The write-path loop's measured changes (0: the propagation run).</summary>
    public int Loop { get; private set; }

    /// <summary>The write-path loop's warm-up changes, not measured.</summary>
    public int WarmupChanges { get; private set; } = 2000;

    /// <summary>Written ("start") when the write-path loop's measured part begins, so that a profiler can attach then.</summary>
    public string? WindowFile { get; private set; }

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> with a readable message.</summary>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var o = new BenchOptions { Args = [.. args] };
        BenchArgs.Parse(args, (name, value) =>
        {
            switch (name)
            {
                case "--connection-string": o.ConnectionString = value; break;
                case "--broker-port": o.BrokerPort = (int)Number(name, value, 1, 65535); break;
                case "--certs": o.CertsDir = value; break;
                case "--authority": o.Authority = AbsoluteUri(name, value.EndsWith('/') ? value : value + "/"); break;
                case "--region-secret": o.RegionSecret = value; break;
                case "--work-dir": o.WorkDir = value; break;
                case "--regions": o.Regions = value.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); break;
                case "--users": o.Users = (int)Number(name, value, 1, 1_000_000); break;
                case "--rate": o.Rate = Number(name, value, 0.1, 100_000); break;
                case "--seconds": o.Seconds = Number(name, value, 0.1, 3600); break;
                case "--warmup-seconds": o.WarmupSeconds = Number(name, value, 0, 3600); break;
                case "--writers": o.Writers = (int)Number(name, value, 1, 1000); break;
                case "--drain-seconds": o.DrainSeconds = Number(name, value, 1, 3600); break;
                case "--changes-per-commit": o.ChangesPerCommit = (int)Number(name, value, 1, 1000); break;
                case "--writer":
                    o.Writer = value switch
                    {
                        "operation" => BenchWriter.Operation,
                        "direct" => BenchWriter.Direct,
                        _ => throw new ArgumentException("--writer: operation or direct"),
                    };
                    break;
                case "--as-region": o.AsRegion = value; break;
                case "--poll-interval": o.PollInterval = value; break;
                case "--server-pid": o.ServerPid = (int)Number(name, value, 1, int.MaxValue); break;
                case "--db-pid": o.DbPid = (int)Number(name, value, 1, int.MaxValue); break;
                case "--broker-pid": o.BrokerPid = (int)Number(name, value, 1, int.MaxValue); break;
                case "--loop": o.Loop = (int)Number(name, value, 1, 10_000_000); break;
                case "--warmup-changes": o.WarmupChanges = (int)Number(name, value, 0, 10_000_000); break;
                case "--window-file": o.WindowFile = value; break;
                default: throw new ArgumentException($"unknown option {name}");
            }
        });

        var missing = new List<string>();
        if (o.ConnectionString.Length == 0) missing.Add("--connection-string");
        if (o.Loop > 0)
        {
            return missing.Count > 0 ? throw new ArgumentException("missing --connection-string")
                : o.Writer == BenchWriter.Operation ? o : throw new ArgumentException("--loop runs the operation writer only");
        }

        if (o.BrokerPort == 0) missing.Add("--broker-port");
        if (o.CertsDir.Length == 0) missing.Add("--certs");
        if (o.Authority is null) missing.Add("--authority");
        if (o.RegionSecret.Length == 0) missing.Add("--region-secret");
        if (o.WorkDir.Length == 0) missing.Add("--work-dir");
        if (missing.Count > 0)
        {
            throw new ArgumentException("missing " + string.Join(", ", missing));
        }

        if (o.Regions.Count == 0)
        {
            throw new ArgumentException("--regions: at least one region");
        }

        // Every user is always changed by the same writer, so no two writes to one user race: commit c changes users
        // c x N .. c x N + N - 1 (mod users) and writer w makes commits w, w + writers, ...; that holds when writers x N
        // divides the users: the largest such number of writers not above --writers.
        if (o.Users % o.ChangesPerCommit != 0)
        {
            throw new ArgumentException("--changes-per-commit must divide --users");
        }

        if (o.Writer == BenchWriter.Operation && o.ChangesPerCommit != 1)
        {
            throw new ArgumentException("--writer operation changes one user per commit: use --writer direct with --changes-per-commit");
        }

        var commitsPerRound = o.Users / o.ChangesPerCommit;
        o.Writers = Enumerable.Range(1, Math.Min(o.Writers, commitsPerRound)).Last(w => commitsPerRound % w == 0);
        return o;
    }
}
