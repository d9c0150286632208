using System.Security.Cryptography.X509Certificates;
using Identity.Shared;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Certificate;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Identity.Region.Validation;

public static class TokenValidationExtensions
{
    /// <summary>
    /// Identity's access tokens accepted by this service's APIs, as the default authentication scheme: see
    /// <see cref="AddIdentityBearer"/>.
    /// </summary>
    public static AuthenticationBuilder AddIdentityTokenValidation(this IServiceCollection services, Action<IdentityTokenValidationOptions>? configure = null) =>
        services.AddAuthentication(IdentityBearerDefaults.AuthenticationScheme).AddIdentityBearer(configure);

    /// <summary>
    /// The <c>Bearer</c> scheme (JwtBearer) for Identity's access tokens, options from <c>IdentityTokenValidation</c>
    /// validated at start: issuer, audience, <c>typ: at+jwt</c>, lifetime and signature with Identity's keys
    /// (<see cref="IdentitySigningKeys"/>), then the certificate binding (RFC 8705 §3) with the caller's chain
    /// validated by the Certificate handler, once <see cref="CallerCertificateChain"/> found it complete without
    /// downloading anything. Callers' certificates come from this service's TLS connection (see
    /// <see cref="AskForClientCertificate"/>) or from a trusted proxy's header.
    /// </summary>
    public static AuthenticationBuilder AddIdentityBearer(this AuthenticationBuilder builder, Action<IdentityTokenValidationOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var options = services.AddOptions<IdentityTokenValidationOptions>().BindConfiguration(IdentityTokenValidationOptions.SectionName);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateDataAnnotations().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<IdentityTokenValidationOptions>, IdentityTokenValidationOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.AddHttpClient(IdentitySigningKeys.HttpClientName, http => http.Timeout = TimeSpan.FromSeconds(10));
        services.TryAddSingleton<IdentitySigningKeys>();
        services.AddHostedService(provider => provider.GetRequiredService<IdentitySigningKeys>());
        services.TryAddSingleton(provider => new IdentityTokenHandler(
            provider.GetRequiredService<IdentitySigningKeys>(), provider.GetRequiredService<TimeProvider>(),
            provider.GetRequiredService<IOptions<IdentityTokenValidationOptions>>().Value));
        services.TryAddScoped<IdentityBearerEvents>();
        services.TryAddSingleton(provider => new CallerCertificateChain(
            provider.GetRequiredService<IOptionsMonitor<CertificateAuthenticationOptions>>(), provider.GetRequiredService<TimeProvider>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CertificateAuthenticationOptions>, CertificateOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupFilter, ForwardedCertificateFilter>());

        builder.AddJwtBearer(IdentityBearerDefaults.AuthenticationScheme, _ => { });
        services.AddOptions<JwtBearerOptions>(IdentityBearerDefaults.AuthenticationScheme)
            .Configure<IOptions<IdentityTokenValidationOptions>, IdentitySigningKeys, IdentityTokenHandler, TimeProvider>((jwt, validation, keys, handler, time) =>
            {
                // No Authority / MetadataAddress: JwtBearer's own ConfigurationManager stays unused; keys come from ours.
                jwt.TokenValidationParameters = IdentityTokenHandler.Parameters(validation.Value, keys, time);
                jwt.TokenHandlers.Clear();
                jwt.TokenHandlers.Add(handler);
                jwt.MapInboundClaims = false;
                jwt.RequireHttpsMetadata = !AuthorityUrl.IsLoopbackHttp(validation.Value.Authority);
                jwt.EventsType = typeof(IdentityBearerEvents);
            });

        builder.AddCertificate(IdentityBearerDefaults.CertificateScheme, _ => { });
        services.AddOptions<CertificateAuthenticationOptions>(IdentityBearerDefaults.CertificateScheme)
            .Configure<IOptions<IdentityTokenValidationOptions>>((certificate, validation) =>
            {
                var settings = validation.Value;
                certificate.AllowedCertificateTypes = settings.AllowSelfSignedCertificates ? CertificateTypes.All : CertificateTypes.Chained;
                certificate.ValidateCertificateUse = true;
                certificate.ValidateValidityPeriod = true;
                // Identity checked revocation when it issued the token (its CRL); the token's lifetime bounds the rest.
                // Online would fetch the addresses callers write into their certificates (refused at start, 0067).
                certificate.RevocationMode = X509RevocationMode.NoCheck;
                if (!string.IsNullOrEmpty(settings.TrustedCaFile))
                {
                    certificate.ChainTrustValidationMode = X509ChainTrustMode.CustomRootTrust;
                    certificate.CustomTrustStore.ImportFromPemFile(settings.TrustedCaFile);
                }
            })
            .ValidateOnStart();
        // One chain validation per certificate, not per request.
        builder.AddCertificateCache(cache => cache.CacheEntryExpiration = TimeSpan.FromMinutes(5));
        return builder;
    }

    /// <summary>
    /// Kestrel asks TLS clients for a certificate and lets the connection through with or without one: the binding
    /// check decides per request, and the Certificate handler validates the chain against
    /// <c>IdentityTokenValidation:TrustedCaFile</c> (so the handshake accepts any certificate).
    /// <para>
    /// The TLS layer's own chain build (SslStream builds one for every client certificate, whatever the callback says)
    /// trusts nothing, checks no revocation and downloads nothing: its verdict is never used, and with Kestrel's
    /// defaults any caller could make the service fetch the issuer, OCSP and CRL addresses written in its certificate
    /// during the handshake (the authority's mTLS port does the same, its decision 0062). This replaces
    /// <see cref="HttpsConnectionAdapterOptions.OnAuthenticate"/>.
    /// </para>
    /// </summary>
    public static HttpsConnectionAdapterOptions AskForClientCertificate(this HttpsConnectionAdapterOptions https)
    {
        ArgumentNullException.ThrowIfNull(https);
        https.ClientCertificateMode = Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.AllowCertificate;
        https.ClientCertificateValidation = static (_, _, _) => true;
        https.CheckCertificateRevocation = false;
        https.OnAuthenticate = static (_, ssl) => ssl.CertificateChainPolicy = TlsLayerChainPolicy.ForOneConnection();
        return https;
    }
}
