namespace Identity.Messaging;

/// <summary>
/// Where the RabbitMQ broker is and how to authenticate to it: mutual TLS only, the client certificate's
/// subject (CN) is the RabbitMQ user (SASL EXTERNAL), so there is no password. See deploy/rabbitmq.
/// </summary>
public sealed class BrokerOptions
{
    public const string SectionName = "Broker";

    /// <summary>The broker's host name or address.</summary>
    public string Host { get; set; } = "";

    /// <summary>The AMQPS port (the broker has no plain AMQP listener).</summary>
    public int Port { get; set; } = 5671;

    public string VirtualHost { get; set; } = "/";

    /// <summary>The name the broker's certificate must carry (and the SNI name); defaults to <see cref="Host"/>.</summary>
    public string? ServerName { get; set; }

    /// <summary>PEM file of the CA that issued the broker's certificate: the only root trusted for the broker.</summary>
    public string CaCertificatePath { get; set; } = "";

    /// <summary>PKCS#12 (.pfx) file with this client's certificate and private key.</summary>
    public string ClientCertificatePath { get; set; } = "";

    /// <summary>The .pfx password; none for the development certificates of deploy/rabbitmq/make-certs.sh.</summary>
    public string? ClientCertificatePassword { get; set; }

    internal string EffectiveServerName => string.IsNullOrWhiteSpace(ServerName) ? Host : ServerName;
}
