using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>
/// A client machine that is not this one: a Linux network namespace joined to the host by a veth pair, with an
/// address of its own (<see cref="PeerAddress"/>, a /30 in 10.213.0.0/16) facing <see cref="HostAddress"/>. A server
/// listening on <see cref="HostAddress"/> sees requests from <see cref="Client"/> come from <see cref="PeerAddress"/>,
/// a real non-loopback socket peer, which the in-memory test server cannot give. Needs root and iproute2
/// (<c>scripts/test.sh</c> installs it); names are random, so parallel runs do not clash; disposing removes it all.
/// </summary>
public sealed partial class NetworkNamespace : IAsyncLifetime
{
    private const int CloneNewNet = 0x40000000; // setns(2): join a network namespace

    private readonly string _id = Guid.NewGuid().ToString("n")[..8];

    public string Name => "idt-" + _id;

    public IPAddress HostAddress { get; private set; } = IPAddress.None;

    public IPAddress PeerAddress { get; private set; } = IPAddress.None;

    public async Task InitializeAsync()
    {
        var (hostSide, peerSide) = ("vi" + _id + "h", "vi" + _id + "n");
        var (prefix, first) = await FreeSubnetAsync();
        HostAddress = IPAddress.Parse($"{prefix}{first + 1}");
        PeerAddress = IPAddress.Parse($"{prefix}{first + 2}");
        await IpAsync($"netns add {Name}");
        try
        {
            await IpAsync($"link add {hostSide} type veth peer name {peerSide}");
            await IpAsync($"link set {peerSide} netns {Name}");
            await IpAsync($"addr add {HostAddress}/30 dev {hostSide}");
            await IpAsync($"link set {hostSide} up");
            await IpAsync($"-n {Name} addr add {PeerAddress}/30 dev {peerSide}");
            await IpAsync($"-n {Name} link set {peerSide} up");
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    /// <summary>Deleting the namespace deletes the veth pair with it.</summary>
    public Task DisposeAsync() => IpAsync($"netns del {Name}", check: false);


    /// <summary>An HTTP client whose connections are made from inside the namespace (cookies kept, no redirects followed).</summary>
    public HttpClient Client(Uri baseAddress) => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseCookies = true,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = SocketInside();
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    {
        BaseAddress = baseAddress,
    };

    /// <summary>
    /// A socket belongs to the network namespace of the thread that creates it, for its whole life: a thread of its own
    /// joins the namespace (setns(2) changes only the calling thread), creates it, and ends.
    /// </summary>
    private Socket SocketInside()
    {
        Socket? socket = null;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle($"/var/run/netns/{Name}");
                if (SetNamespace((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                {
                    throw new Win32Exception(Marshal.GetLastPInvokeError(), $"setns into {Name}");
                }

                socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            }
            catch (Exception e) when (e is Win32Exception or IOException or SocketException or UnauthorizedAccessException)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        return socket ?? throw new InvalidOperationException($"No socket inside network namespace {Name}.", failure);
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNamespace(int fd, int nstype);

    /// <summary>The network address of a /30 in 10.213.0.0/16 that no interface of this machine uses.</summary>
    private static async Task<(string Prefix, int First)> FreeSubnetAsync()
    {
        var used = await IpAsync("-4 -o addr show");
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var prefix = $"10.213.{Random.Shared.Next(256)}.";
            var first = Random.Shared.Next(64) * 4;
            if (!Enumerable.Range(first, 4).Any(host => used.Contains($" {prefix}{host}/", StringComparison.Ordinal)))
            {
                return (prefix, first);
            }
        }

        throw new InvalidOperationException("No free /30 in 10.213.0.0/16.");
    }

    private static async Task<string> IpAsync(string arguments, bool check = true)
    {
        using var process = Process.Start(new ProcessStartInfo("ip", arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        }) ?? throw new InvalidOperationException("ip could not be started.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"ip {arguments} exited {process.ExitCode}: {await error} (network namespaces need root and iproute2: run ./scripts/test.sh)");
        }

        return await output;
    }
}
