using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using RabbitMQ.Client;

namespace Identity.Messaging.Tests;

/// <summary>
/// The private broker started by scripts/test.sh (TLS only, client certificates, users identity and
/// region-eu/us/au). Outside that script the variables are missing and every test fails, saying so.
/// </summary>
public sealed class BrokerFixture
{
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
