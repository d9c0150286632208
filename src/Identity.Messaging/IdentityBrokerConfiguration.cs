using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Identity.Messaging;

/// <summary>Connects MassTransit to Identity's broker: TLS 1.2/1.3, a client certificate as the identity, publisher confirms.</summary>
public static class IdentityBrokerConfiguration
{
    /// <summary>Binds <see cref="BrokerOptions"/> to the "Broker" section and validates it at start-up.</summary>
    public static OptionsBuilder<BrokerOptions> AddBrokerOptions(this IServiceCollection services)
    {
        services.AddSingleton<IValidateOptions<BrokerOptions>, BrokerOptionsValidator>();
        return services.AddOptions<BrokerOptions>().BindConfiguration(BrokerOptions.SectionName).ValidateOnStart();
    }

    /// <summary>
    /// Configures the RabbitMQ host from <paramref name="options"/> (validated first). The certificates are
    /// loaded once, here, and live as long as the bus.
    /// </summary>
    public static void UseIdentityBroker(this IRabbitMqBusFactoryConfigurator configurator, BrokerOptions options)
    {
        BrokerOptionsValidator.ThrowIfInvalid(options);
        var ca = BrokerCertificates.LoadCaCertificate(options.CaCertificatePath);
        var client = BrokerCertificates.LoadClientCertificate(options.ClientCertificatePath, options.ClientCertificatePassword);

        configurator.Host(options.Host, (ushort)options.Port, options.VirtualHost, host =>
        {
            // The broker confirms every message it has taken responsibility for before Send/Publish completes
            // (MassTransit's default, stated because delivery to the regions depends on it).
            host.PublisherConfirmation = true;
            host.ConnectionName(client.GetNameInfo(X509NameType.SimpleName, forIssuer: false));
            host.UseSsl(ssl =>
            {
                ssl.Protocol = SslProtocols.Tls12 | SslProtocols.Tls13;
                ssl.ServerName = options.EffectiveServerName;
                ssl.Certificate = client;
                // SASL EXTERNAL: the broker takes the user from the certificate's CN (ssl_cert_login_from).
                ssl.UseCertificateAsAuthenticationIdentity = true;
                ssl.CertificateValidationCallback = BrokerCertificates.TrustOnly(ca);
            });
        });
    }
}
