using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>
/// TCP ports for the servers a test must name before they listen: a child process given its URL, hosts whose settings
/// name each other, a server stopped and started again where its clients expect it (decision 0100).
/// <para>
/// A port the kernel picks (bind to port 0, then close) is free only at that moment: until the server binds it, any
/// other bind to port 0 on the machine, or any outgoing connection, may be given it, and the test assemblies of a run
/// go at once, each with servers of its own. These ports come from below the kernel's ephemeral range
/// (<c>ip_local_port_range</c>, 32768-60999 by default), which the kernel never hands out by itself, and below the
/// range scripts/lib/ports.sh gives the services (from 20000 up). A lock file per port, held until the process ends,
/// keeps the test processes running at once from taking the same port; within a process a port is handed out once.
/// </para>
/// </summary>
public static class TestPorts
{
    private const int First = 10_000;
    private const int Last = 19_999;
    private static readonly Lock Gate = new();
    private static readonly List<FileStream> Held = [];
    private static readonly string Folder = Path.Combine(Path.GetTempPath(), "identity-test-ports");

    /// <summary>A port nothing listens on, reserved for this process.</summary>
    public static int Next() => Take(1)[0];

    /// <summary><paramref name="count"/> distinct ports nothing listens on, reserved for this process.</summary>
    public static int[] Take(int count)
    {
        var (first, last) = Range();
        var ports = new int[count];
        lock (Gate)
        {
            Directory.CreateDirectory(Folder);
            var size = last - first + 1;
            var offset = Random.Shared.Next(size);
            var taken = 0;
            for (var i = 0; i < size && taken < count; i++)
            {
                var port = first + (offset + i) % size;
                if (TryReserve(port))
                {
                    ports[taken++] = port;
                }
            }

            return taken == count
                ? ports
                : throw new InvalidOperationException($"No {count} free TCP ports left in {first}-{last} ({Folder} holds the reservations).");
        }
    }

    /// <summary>Held by this process from now on (its lock file), if no other process holds it and nothing listens on it.</summary>
    private static bool TryReserve(int port)
    {
        FileStream reservation;
        try
        {
            // FileShare.None is an exclusive advisory lock (flock) on Linux: released when the process ends.
            reservation = new FileStream(Path.Combine(Folder, port.ToString(CultureInfo.InvariantCulture)), FileMode.OpenOrCreate,
                FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            return false; // another test process holds it (or this one, handed out before)
        }

        if (!Bindable(port))
        {
            reservation.Dispose();
            return false;
        }

        Held.Add(reservation);
        return true;
    }

    /// <summary>Whether a listener could bind <paramref name="port"/> on every address now (the wildcard, both families).</summary>
    private static bool Bindable(int port)
    {
        var dualStack = Socket.OSSupportsIPv6;
        using var socket = new Socket(dualStack ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (dualStack)
            {
                socket.DualMode = true;
            }

            socket.Bind(new IPEndPoint(dualStack ? IPAddress.IPv6Any : IPAddress.Any, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>10000-19999, cut below the ephemeral range where a machine starts that range lower.</summary>
    private static (int First, int Last) Range()
    {
        var low = 32_768;
        try
        {
            low = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0],
                CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            // Not Linux, or not readable: the usual range.
        }

        var last = Math.Min(Last, low - 1);
        return last - First >= 1_000 ? (First, last) : (1_024, low - 1);
    }
}
