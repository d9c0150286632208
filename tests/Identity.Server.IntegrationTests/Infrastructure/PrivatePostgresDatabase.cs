using System.Diagnostics;
using Identity.Core.Data;
using Npgsql;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>
/// A PostgreSQL cluster of this test class's own (initdb + pg_ctl on a free loopback port, in a temp folder), so that a
/// test can stop it and start it again on the same port without touching the cluster every other test shares
/// (<c>IDENTITY_TEST_POSTGRES</c>). Stopped by its postmaster's PID; tuned for speed, not durability, as scripts/lib/postgres.sh.
/// </summary>
public sealed class PrivatePostgresDatabase : TestDatabase
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "identity-private-pg-" + Guid.NewGuid().ToString("n")[..12]);
    private string _bin = "";

    public override DatabaseProvider Provider => DatabaseProvider.PostgreSql;

    public int Port { get; } = TestPorts.Next();

    /// <summary>The postmaster's PID while it runs, 0 when stopped.</summary>
    public int Pid { get; private set; }

    private string DataDirectory => Path.Combine(_directory, "data");

    public override async Task InitializeAsync()
    {
        _bin = Directory.GetDirectories("/usr/lib/postgresql")
            .Select(d => Path.Combine(d, "bin"))
            .Where(d => File.Exists(Path.Combine(d, "initdb")))
            .OrderBy(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0)
            .LastOrDefault() ?? throw new InvalidOperationException("No PostgreSQL under /usr/lib/postgresql: run the tests with ./scripts/test.sh, which installs it.");
        Directory.CreateDirectory(_directory);
        if (Environment.UserName == "root")
        {
            await RunAsync("chown", "postgres:", _directory); // PostgreSQL refuses to run as root
        }

        await RunAsOwnerAsync(Path.Combine(_bin, "initdb"), "-D", DataDirectory, "-A", "trust", "--no-sync", "-U", "postgres", "-E", "UTF8", "--locale=C");
        await StartAsync();
        var admin = $"Host=127.0.0.1;Port={Port};Username=postgres;Password=unused;Database=postgres";
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("CREATE DATABASE identity", connection);
            await command.ExecuteNonQueryAsync();
        }

        ConnectionString = new NpgsqlConnectionStringBuilder(admin) { Database = "identity" }.ConnectionString;
    }

    /// <summary>Starts the cluster (again) on <see cref="Port"/> and waits until it accepts connections.</summary>
    public async Task StartAsync()
    {
        await RunAsOwnerAsync(Path.Combine(_bin, "pg_ctl"), "-D", DataDirectory, "-w", "-t", "60", "-l", Path.Combine(_directory, "log"), "start",
            "-o", $"-p {Port} -k {_directory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        Pid = int.Parse((await File.ReadAllLinesAsync(Path.Combine(DataDirectory, "postmaster.pid")))[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// PostgreSQL's fast shutdown (SIGINT to the postmaster, by PID): open sessions are ended (57P01), new connections refused.
    /// Returns once the postmaster has gone (its postmaster.pid removed), after at most 30 s.
    /// </summary>
    public async Task StopAsync()
    {
        if (Pid == 0)
        {
            return;
        }

        await RunAsync("kill", "-INT", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            if (DateTime.UtcNow > deadline)
            {
                await RunAsync("kill", "-KILL", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
                break;
            }

            await Task.Delay(100);
        }

        Pid = 0;
    }

    public override async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await StopAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private Task RunAsOwnerAsync(string program, params string[] arguments) => Environment.UserName == "root"
        ? RunAsync("runuser", ["-u", "postgres", "--", program, .. arguments])
        : RunAsync(program, arguments);

    private async Task RunAsync(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _directory,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited {process.ExitCode}: {await output} {await errors}");
        }
    }
}
