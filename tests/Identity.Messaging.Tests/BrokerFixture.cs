using System.Diagnostics;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Identity.Contracts;
using MassTransit;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Identity.Messaging.Tests;

/// <summary>
/// The private broker started by scripts/test.sh (TLS only, client certificates, users identity and
/// region-eu/us/au). Outside that script the variables are missing and every test fails, saying so.
/// </summary>
public sealed class BrokerFixture
{
    private const ushort NotFound = 404;
    private const ushort InternalError = 541;

    public BrokerFixture()
    {
        Port = int.Parse(Require("IDENTITY_TEST_RABBITMQ_PORT"), System.Globalization.CultureInfo.InvariantCulture);
        CertificatesPath = Require("IDENTITY_TEST_RABBITMQ_CERTS");
        StatePath = Require("IDENTITY_TEST_RABBITMQ_STATE");
        ControlScript = Require("IDENTITY_TEST_RABBITMQ_CTL");
    }

    public int Port { get; }

    public string CertificatesPath { get; }

    /// <summary>The broker's state folder, for <see cref="ControlScript"/> (start|stop|kill|status DIR).</summary>
    public string StatePath { get; }

    public string ControlScript { get; }

    /// <summary>Options for the client <paramref name="name"/> (identity, region-eu, rogue-identity, ...).</summary>
    public BrokerOptions OptionsFor(string name, string ca = "ca") => new()
    {
        Host = "127.0.0.1",
        Port = Port,
        ServerName = "localhost",
        CaCertificatePath = Path.Combine(CertificatesPath, ca + ".pem"),
        ClientCertificatePath = Path.Combine(CertificatesPath, name + ".pfx"),
    };

    /// <summary>A plain RabbitMQ.Client connection factory as client <paramref name="name"/>, or with no certificate.</summary>
    public ConnectionFactory RawFactoryFor(string? name, string ca = "ca")
    {
        var trusted = BrokerCertificates.LoadCaCertificate(Path.Combine(CertificatesPath, ca + ".pem"));
        var ssl = new SslOption
        {
            Enabled = true,
            ServerName = "localhost",
            Version = SslProtocols.Tls12 | SslProtocols.Tls13,
            CertificateValidationCallback = BrokerCertificates.TrustOnly(trusted),
        };
        if (name is not null)
        {
            ssl.Certs = new X509CertificateCollection
            {
                BrokerCertificates.LoadClientCertificate(Path.Combine(CertificatesPath, name + ".pfx"), null),
            };
        }

        return new ConnectionFactory
        {
            HostName = "127.0.0.1",
            Port = Port,
            Ssl = ssl,
            AuthMechanisms = [new ExternalMechanismFactory()],
            AutomaticRecoveryEnabled = false,
            RequestedConnectionTimeout = TimeSpan.FromSeconds(10),
        };
    }

    /// <summary>Identity's bus: sends only.</summary>
    public Task<RunningBus> StartIdentityAsync(CancellationToken cancellationToken) =>
        RunningBus.StartAsync(Bus.Factory.CreateUsingRabbitMq(cfg => cfg.UseIdentityBroker(OptionsFor("identity"))), cancellationToken);

    /// <summary>A region's bus, consuming <see cref="UserChanged"/> from the region's queue with <paramref name="handle"/>.</summary>
    public Task<RunningBus> StartRegionAsync(string region, Func<UserChanged, Task> handle, CancellationToken cancellationToken) =>
        RunningBus.StartAsync(
            Bus.Factory.CreateUsingRabbitMq(cfg =>
            {
                cfg.UseIdentityBroker(OptionsFor("region-" + region));
                cfg.ReceiveRegionEndpoint(region, endpoint => endpoint.Handler<UserChanged>(context => handle(context.Message)));
            }),
            cancellationToken);

    /// <summary>
    /// Reads <paramref name="queue"/> as <paramref name="user"/> (removing what it reads) until a message mentioning
    /// <paramref name="userId"/> turns up, for up to 30 s.
    /// </summary>
    public async Task<bool> ContainsMessageAboutAsync(string user, string queue, string userId, CancellationToken cancellationToken)
    {
        var factory = RawFactoryFor(user);
        var connection = await factory.CreateConnectionAsync(cancellationToken);
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (DateTime.UtcNow < deadline)
            {
                if (!connection.IsOpen)
                {
                    // "noproc" is 541 INTERNAL_ERROR, a hard error: the broker closed the whole connection, not the channel.
                    await connection.DisposeAsync();
                    connection = await factory.CreateConnectionAsync(cancellationToken);
                }

                await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
                BasicGetResult? result;
                try
                {
                    result = await channel.BasicGetAsync(queue, autoAck: true, cancellationToken);
                }
                catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == NotFound || IsQueueStarting(e))
                {
                    // MassTransit declares _error and _skipped queues when it first moves a message there, and a quorum
                    // queue just declared answers "noproc" until its process has started (seen on a loaded machine).
                    result = null;
                }

                if (result is null)
                {
                    await Task.Delay(200, cancellationToken);
                }
                else if (Encoding.UTF8.GetString(result.Body.Span).Contains(userId, StringComparison.Ordinal))
                {
                    return true;
                }
            }

            return false;
        }
        finally
        {
            await connection.DisposeAsync();
        }
    }

    /// <summary>Runs <see cref="ControlScript"/> COMMAND <see cref="StatePath"/> and returns its standard output.</summary>
    public async Task<string> ControlAsync(string command, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(ControlScript) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(command);
        start.ArgumentList.Add(StatePath);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not run {ControlScript}");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return process.ExitCode == 0
            ? (await output).Trim()
            : throw new InvalidOperationException($"{ControlScript} {command} exited {process.ExitCode}: {await errors}");
    }

    private static bool IsQueueStarting(OperationInterruptedException e) =>
        e.ShutdownReason?.ReplyCode == InternalError && e.ShutdownReason.ReplyText.Contains("noproc", StringComparison.Ordinal);

    public static string NewUserId() => "user-" + Guid.NewGuid().ToString("N");

    public static UserChanged NewUser(string userId) => new()
    {
        UserId = userId,
        AccountId = Guid.NewGuid(),
        Email = "someone@example.test",
        Role = "member",
        Status = UserStatuses.Active,
        MfaEnrolled = false,
        Version = 1,
        ChangedAt = DateTimeOffset.UtcNow,
    };

    private static string Require(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{name} is not set: the messaging tests need the private RabbitMQ broker that ./scripts/test.sh starts. " +
                "Run them through it, e.g. ./scripts/test.sh --filter \"FullyQualifiedName~Identity.Messaging\".");
}

/// <summary>The messaging tests run one after another in this collection, sharing one <see cref="BrokerFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class BrokerSuite : ICollectionFixture<BrokerFixture>
{
    public const string Name = "Broker";
}
