using System.Diagnostics;
using System.Net;
using System.Text;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>
/// The real Identity.Server as a process of its own (<c>dotnet Identity.Server.dll</c>, the build beside these tests),
/// configured only through environment variables, on a fixed loopback port (chosen once) so that it can be killed and started again
/// where its clients expect it. Nothing is shared with the test process but the database and the broker.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly IReadOnlyDictionary<string, string?> _settings;
    private readonly StringBuilder _output = new();
    private Process? _process;

    /// <param name="settings">Configuration keys (<c>Database:Provider</c>, …), passed as <c>Database__Provider</c>, ….</param>
    public ServerProcess(IReadOnlyDictionary<string, string?> settings)
    {
        _settings = settings;
        Port = TestPorts.Next();
    }

    public int Port { get; }

    /// <summary>At <c>localhost</c>, like the in-process hosts: the sign-in redirects name the request's host.</summary>
    public Uri BaseAddress => new($"http://localhost:{Port}/");

    /// <summary>The operating system's id of the running process (0 before it started).</summary>
    public int Id => _process?.Id ?? 0;

    public bool HasExited => _process is null || _process.HasExited;

    /// <summary>What the process wrote, for a failing test's message.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts the process (again, after <see cref="KillAsync"/>: same port) and waits until it is ready.</summary>
    public async Task StartAsync(string readyPath = "health/live")
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(ServerDll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(ServerDll);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add($"http://localhost:{Port}");
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        // Test databases are thrown away: no certificate protects their data-protection key ring (as for the in-process hosts).
        start.Environment["DataProtection__AllowUnprotectedKeys"] = "true";
        start.Environment["Propagation__ChangesOutsideOperations"] = "Fail";
        foreach (var (key, value) in _settings)
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"Identity.Server exited during start-up ({_process.ExitCode}):\n{Output}");
            }

            try
            {
                if ((await http.GetAsync(new Uri(BaseAddress, readyPath))).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"Identity.Server did not answer {readyPath} within 120 s:\n{Output}");
    }

    /// <summary>A client of this process; <paramref name="cookies"/> shares a browser's cookies with other replicas.</summary>
    public HttpClient CreateClient(CookieContainer? cookies = null) =>
        new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = cookies is not null, CookieContainer = cookies ?? new CookieContainer() })
        {
            BaseAddress = BaseAddress,
            Timeout = TimeSpan.FromSeconds(60),
        };

    /// <summary>SIGKILL: no graceful shutdown, as a crash or a lost machine would end it.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    /// <summary>SIGTERM, as Kubernetes, systemd or Ctrl-C in a container stop a process: a graceful shutdown begins.</summary>
    public async Task SendTerminateAsync()
    {
        var process = _process is { HasExited: false } running ? running : throw new InvalidOperationException("not running");
        var kill = new ProcessStartInfo("kill") { RedirectStandardError = true };
        kill.ArgumentList.Add("-TERM");
        kill.ArgumentList.Add(process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var sent = Process.Start(kill) ?? throw new InvalidOperationException("kill did not start");
        await sent.WaitForExitAsync();
        if (sent.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -TERM {process.Id} exited {sent.ExitCode}: {await sent.StandardError.ReadToEndAsync()}");
        }
    }

    /// <summary>Waits up to <paramref name="patience"/> for the process to end on its own; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan patience)
    {
        var process = _process ?? throw new InvalidOperationException("never started");
        using var timeout = new CancellationTokenSource(patience);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"Identity.Server did not exit within {patience.TotalSeconds} s:\n{Output}");
        }

        return process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
    }

    /// <summary>The server built beside these tests (same configuration), through the ProjectReference that builds it first.</summary>
    public static string ServerDll
    {
        get
        {
            var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var (framework, configuration) = (output.Name, output.Parent!.Name);
            var root = output;
            while (root is not null && !File.Exists(Path.Combine(root.FullName, "Identity.sln")))
            {
                root = root.Parent;
            }

            var dll = Path.Combine(root!.FullName, "src", "Identity.Server", "bin", configuration, framework, "Identity.Server.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build Identity.Server ({configuration}) first: {dll} is missing.");
        }
    }


    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
