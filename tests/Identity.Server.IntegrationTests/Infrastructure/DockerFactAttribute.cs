using System.Net.Sockets;
using System.Text;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>
/// A fact that needs a Docker engine (SQL Server through Testcontainers). Where no engine answers it reports
/// itself skipped, with the reason; these are the only tests allowed to skip.
/// </summary>
public sealed class DockerFactAttribute : FactAttribute
{
    public DockerFactAttribute()
    {
        if (!DockerEngine.Answers.Value)
        {
            Skip = "No Docker engine answers on this machine: SQL Server tests run where Docker exists.";
        }
    }
}

internal static class DockerEngine
{
    public static readonly Lazy<bool> Answers = new(Ping);

    /// <summary>GET /_ping on the engine's Unix socket (or DOCKER_HOST when it names one).</summary>
    private static bool Ping()
    {
        var host = Environment.GetEnvironmentVariable("DOCKER_HOST");
        var path = host is { } h && h.StartsWith("unix://", StringComparison.Ordinal) ? h["unix://".Length..] : "/var/run/docker.sock";
        if (host is { Length: > 0 } && !host.StartsWith("unix://", StringComparison.Ordinal))
        {
            return true; // a TCP engine: let Testcontainers try it
        }

        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.ReceiveTimeout = 2000;
            socket.SendTimeout = 2000;
            socket.Connect(new UnixDomainSocketEndPoint(path));
            socket.Send(Encoding.ASCII.GetBytes("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"));
            var buffer = new byte[256];
            var read = socket.Receive(buffer);
            return Encoding.ASCII.GetString(buffer, 0, read).Contains(" 200 ", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
