using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>
/// A real nginx (Debian's <c>nginx-light</c>; <c>scripts/test.sh</c> installs it) running one <c>server</c> block in
/// front of a test server: its configuration, temporary files, log and PID in a folder of its own, one process
/// (no master, no daemon), stopped by its PID on dispose.
/// </summary>
public sealed class NginxProxy : IDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    private NginxProxy(Process process, string directory) => (_process, _directory) = (process, directory);

    /// <summary>Starts nginx with <paramref name="server"/> (an nginx <c>server { ... }</c> block) listening on 127.0.0.1:<paramref name="port"/>.</summary>
    public static async Task<NginxProxy> StartAsync(string directory, int port, string server)
    {
        var config = Path.Combine(directory, "nginx.conf");
        await File.WriteAllTextAsync(config, $$"""
            daemon off;
            master_process off;
            worker_processes 1;
            pid {{directory}}/nginx.pid;
            error_log {{directory}}/error.log warn;
            events { worker_connections 128; }
            http {
                access_log off;
                client_body_temp_path {{directory}}/client-body;
                proxy_temp_path {{directory}}/proxy;
                fastcgi_temp_path {{directory}}/fastcgi;
                uwsgi_temp_path {{directory}}/uwsgi;
                scgi_temp_path {{directory}}/scgi;
            {{server}}
            }
            """);
        var process = Process.Start(new ProcessStartInfo("/usr/sbin/nginx", ["-p", directory, "-e", Path.Combine(directory, "error.log"), "-c", config])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        }) ?? throw new InvalidOperationException("nginx could not be started (scripts/test.sh installs nginx-light).");
        var proxy = new NginxProxy(process, directory);
        try
        {
            await proxy.WaitUntilListeningAsync(port);
        }
        catch
        {
            proxy.Dispose();
            throw;
        }

        return proxy;
    }

    private async Task WaitUntilListeningAsync(int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"nginx exited {_process.ExitCode}: {await _process.StandardError.ReadToEndAsync()} {ErrorLog()}");
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    public string ErrorLog()
    {
        var file = Path.Combine(_directory, "error.log");
        return File.Exists(file) ? File.ReadAllText(file) : "";
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
    }
}
