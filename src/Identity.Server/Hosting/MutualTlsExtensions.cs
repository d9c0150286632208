using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Identity.Server.Clients;
using Identity.Server.Connect;
using Identity.Shared;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Hosting;

/// <summary>
/// The mutual-TLS endpoint (<c>Mtls</c>): a port of its own where Kestrel asks for a client certificate, so that
/// services authenticate with certificates (RFC 8705) while browsers on the main port are never prompted; or a host of
/// its own on a TLS-terminating proxy that forwards the certificate (<see cref="Identity.Shared.ForwardedCertificateHeader"/>). Off
/// unless one of <c>Mtls:Port</c> and <c>Mtls:ForwardedCertificateHeader</c> is set.
/// </summary>
public sealed class MutualTlsOptions
{
    public const string SectionName = "Mtls";

    /// <summary>The port of the mTLS endpoint; unset, there is none.</summary>
    [Range(1, 65535)]
    public int? Port { get; set; }

    /// <summary>PEM file of the endpoint's server certificate (with its key, or the key in <see cref="CertificateKeyFile"/>).</summary>
    public string? CertificateFile { get; set; }

    public string? CertificateKeyFile { get; set; }

    /// <summary>
    /// The public https address of the endpoint, published as the base of <c>mtls_endpoint_aliases</c>; by default the
    /// issuer's host on <see cref="Port"/>. Behind a proxy, its host is the one a forwarded certificate is believed for.
    /// </summary>
    public Uri? BaseUri { get; set; }

    /// <summary>PEM bundle of the CAs that issue <c>tls_client_auth</c> certificates (roots, and intermediates if any).</summary>
    public string? TrustedCaFile { get; set; }

    /// <summary>
    /// The header in which a TLS-terminating proxy forwards the client certificate (URL-encoded PEM, or Envoy's XFCC),
    /// believed only from <c>ForwardedHeaders:KnownProxies</c>/<c>KnownNetworks</c> and for <see cref="BaseUri"/>'s host.
    /// </summary>
    public string? ForwardedCertificateHeader { get; set; }

    /// <summary>An environment variable left empty (<c>Mtls__ForwardedCertificateHeader=</c>) is no header.</summary>
    public bool ForwardedCertificate => !string.IsNullOrWhiteSpace(ForwardedCertificateHeader);

    /// <summary>
    /// How long a successful <c>tls_client_auth</c> validation (chain and registered name) is reused for the same client
    /// and certificate, never past the certificate's expiry; zero builds the chain on every token request.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan ValidationCacheDuration { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// CRL files (<c>;</c>-separated, PEM "X509 CRL" blocks or DER) of the CAs of <see cref="TrustedCaFile"/>, each
    /// signed by its CA: a <c>tls_client_auth</c> certificate its issuer's CRL lists is refused (decision 0046, "CRLs").
    /// </summary>
    public string? CrlFile { get; set; }

    /// <summary>How often, at most, <see cref="CrlFile"/> is looked at again for a change (on use).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan CrlCheckInterval { get; set; } = TimeSpan.FromMinutes(1);

    public bool Enabled => Port is not null || ForwardedCertificate;

    public Uri AliasBase(Uri? issuer) => BaseUri
        ?? new UriBuilder(Uri.UriSchemeHttps, issuer?.Host ?? "localhost", Port ?? 443).Uri;
}

public static class MutualTlsExtensions
{
    /// <summary>Endpoints served on the mTLS port under the same path as on the main one (RFC 8705 §5).</summary>
    private const string TokenPath = "connect/token", IntrospectionPath = "connect/introspect", RevocationPath = "connect/revoke";

    public static IHostApplicationBuilder AddMutualTls(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<MutualTlsOptions>()
            .BindConfiguration(MutualTlsOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<MutualTlsOptions>, MutualTlsOptionsValidator>();
        builder.Services.AddScoped<ClientCertificateVerdict>();
        builder.Services.AddSingleton<ClientCertificateValidationCache>();
        builder.Services.AddSingleton<ClientCertificateRevocation>();
        builder.Services.AddHostedService(services => services.GetRequiredService<ClientCertificateRevocation>());

        var options = builder.Configuration.GetSection(MutualTlsOptions.SectionName).Get<MutualTlsOptions>();
        if (options is not { Enabled: true })
        {
            return builder;
        }

        var issuer = builder.Configuration.GetValue<Uri?>($"{OidcOptions.SectionName}:{nameof(OidcOptions.Issuer)}");
        var aliasBase = options.AliasBase(issuer);
        var trusted = TryLoadBundle(options.TrustedCaFile);
        builder.Services.AddOpenIddict().AddServer(server =>
        {
            server.SetMtlsTokenEndpointAliasUri(new Uri(aliasBase, TokenPath))
                .SetMtlsIntrospectionEndpointAliasUri(new Uri(aliasBase, IntrospectionPath))
                .SetMtlsRevocationEndpointAliasUri(new Uri(aliasBase, RevocationPath));

            // Nothing is downloaded while a client certificate is checked (decision 0062): a certificate's AIA and CRL
            // URLs are the client's to choose, so fetching them would let anyone make the server call addresses of its
            // choosing. Issuers come from Mtls:TrustedCaFile (roots and intermediates), revocation from Mtls:CrlFile.
            // self_signed_tls_client_auth (RFC 8705 §2.2): the certificate must be one in the client's JWKS (x5c).
            server.EnableSelfSignedTlsClientAuthentication(policy => policy.DisableCertificateDownloads = true);
            if (trusted is not null)
            {
                // tls_client_auth (RFC 8705 §2.1). Revocation lists are never fetched: those of Mtls:CrlFile are
                // checked by ClientApplicationManager (ClientCertificateRevocation).
                server.EnablePublicKeyInfrastructureTlsClientAuthentication(trusted, policy =>
                {
                    policy.RevocationMode = X509RevocationMode.NoCheck;
                    policy.DisableCertificateDownloads = true;
                });
            }

            // RFC 8705 §3: access tokens issued over mTLS carry cnf.x5t#S256, the certificate's SHA-256 thumbprint.
            server.UseClientCertificateBoundAccessTokens();
            // RFC 8705 §4 (RFC 9700 §4.14.2): a public client's refresh token obtained over mTLS is bound to that
            // certificate (cnf in the token) and redeemed only with it; a confidential client's is bound by its authentication.
            server.UseClientCertificateBoundRefreshTokens();
            server.AddEventHandlers(ProtocolPipeline.MutualTls);
            server.Configure(o =>
            {
                o.ClientAuthenticationMethods.Add(ClientAuthenticationMethods.SelfSignedTlsClientAuth);
                if (trusted is not null)
                {
                    o.ClientAuthenticationMethods.Add(ClientAuthenticationMethods.TlsClientAuth);
                }
            });
        });

        builder.AddForwardedClientCertificate(options);
        if (options.Port is not { } port)
        {
            return builder; // TLS is terminated by the proxy
        }

        builder.AddListener(kestrel =>
        {
            // TLS session resumption (decision 0050): a session made on the mTLS port carries the client certificate
            // of its handshake (RFC 8446 §2.2), and OpenSSL resumed it on another port serving the same server
            // certificate, bringing the certificate there. So no other HTTPS listener resumes sessions while the mTLS
            // port is on; set through the HTTPS defaults, which every listener's UseHttps starts from (the hosting URLs
            // too: KestrelListeners binds them after this).
            kestrel.ConfigureHttpsDefaults(https => https.OnAuthenticate = (_, ssl) => ssl.AllowTlsResume = false);

            kestrel.ListenAnyIP(port, listen => listen.UseHttps(https =>
            {
                https.ServerCertificate = LoadServerCertificate(options);
                // A connection without a certificate is refused at the handshake: this port is for certificate clients
                // only. Any certificate presented is let through the TLS layer: the authorization server decides, so an
                // expired, untrusted or unregistered one is an RFC 6749 invalid_client that is audited and counted.
                https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                https.AllowAnyClientCertificate();
                https.CheckCertificateRevocation = false;
                // This port resumes sessions: a resumed connection is the client of the handshake that made the session
                // (RFC 8446 §2.2), with that handshake's certificate, which is the one its token is bound to. (Resumption
                // stays on: this handler replaces the defaults' one, which turns it off.)
                https.OnAuthenticate = (_, ssl) => ssl.CertificateChainPolicy = TlsLayerChainPolicy.ForOneConnection();
            }));
        });
        return builder;
    }

    private static X509Certificate2 LoadServerCertificate(MutualTlsOptions options)
    {
        using var pem = X509Certificate2.CreateFromPemFile(options.CertificateFile!, options.CertificateKeyFile);
        // An ephemeral key cannot be used by SslStream on every platform: export and re-import it.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    internal static X509Certificate2Collection? TryLoadBundle(string? file)
    {
        if (file is null)
        {
            return null;
        }

        try
        {
            var bundle = new X509Certificate2Collection();
            bundle.ImportFromPemFile(file);
            return bundle.Count == 0 ? null : bundle;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            return null; // MutualTlsOptionsValidator says what is wrong
        }
    }

    private sealed class MutualTlsOptionsValidator(IConfiguration configuration) : IValidateOptions<MutualTlsOptions>
    {
        public ValidateOptionsResult Validate(string? name, MutualTlsOptions options)
        {
            var failures = new List<string>();
            var declared = configuration.GetSection($"{ClientCatalogueOptions.SectionName}:{nameof(ClientCatalogueOptions.Clients)}").GetChildren()
                .Select(c => (Path: $"Oidc:Clients:{c.Key}", Method: c[nameof(ClientDefinition.TokenEndpointAuthMethod)]
                    ?? ((c["TlsClientAuthSubjectDn"] ?? c["TlsClientAuthSanDns"] ?? c["TlsClientAuthSanUri"]) is null ? null : ClientAuthenticationMethods.TlsClientAuth)))
                .ToList();
            var clients = declared.Where(c => c.Method == ClientAuthenticationMethods.TlsClientAuth).Select(c => c.Path).ToList();
            var selfSigned = declared.Where(c => c.Method == ClientAuthenticationMethods.SelfSignedTlsClientAuth).Select(c => c.Path).ToList();
            if (!options.Enabled)
            {
                if (clients.Count > 0)
                {
                    failures.Add($"{string.Join(", ", clients)}: certificate authentication needs Mtls:Port, Mtls:CertificateFile and Mtls:TrustedCaFile, or behind a proxy Mtls:ForwardedCertificateHeader, Mtls:BaseUri and Mtls:TrustedCaFile.");
                }

                if (selfSigned.Count > 0)
                {
                    failures.Add($"{string.Join(", ", selfSigned)}: self_signed_tls_client_auth needs Mtls:Port and Mtls:CertificateFile.");
                }

                return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
            }

            var issuer = configuration.GetValue<Uri?>($"{OidcOptions.SectionName}:{nameof(OidcOptions.Issuer)}");
            if (options.Port is not null && issuer is null)
            {
                failures.Add("Mtls:Port needs Oidc:Issuer: the mTLS endpoint aliases are published with a fixed issuer (RFC 8705 §5).");
            }

            if (options.BaseUri is { } baseUri && (!baseUri.IsAbsoluteUri || baseUri.Scheme != Uri.UriSchemeHttps))
            {
                failures.Add("Mtls:BaseUri must be an absolute https URL (e.g. https://mtls.id.example.com/).");
            }

            if (options.Port is not null && options.CertificateFile is null)
            {
                failures.Add("Mtls:CertificateFile (PEM server certificate of the mTLS endpoint) is required with Mtls:Port.");
            }
            else if (options.CertificateFile is not null)
            {
                try
                {
                    using var certificate = X509Certificate2.CreateFromPemFile(options.CertificateFile, options.CertificateKeyFile);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
                {
                    failures.Add($"Mtls:CertificateFile/CertificateKeyFile cannot be read as a PEM certificate with its key: {ex.Message}");
                }
            }

            // An environment variable left empty (Mtls__TrustedCaFile=) is no bundle.
            var caFile = string.IsNullOrWhiteSpace(options.TrustedCaFile) ? null : options.TrustedCaFile;
            if (caFile is not null && TryLoadBundle(caFile) is null)
            {
                failures.Add($"Mtls:TrustedCaFile '{caFile}' cannot be read as a PEM bundle of CA certificates.");
            }
            else if (caFile is null && clients.Count > 0)
            {
                failures.Add($"{string.Join(", ", clients)}: tls_client_auth needs Mtls:TrustedCaFile, the CAs that issue client certificates.");
            }

            if (!string.IsNullOrWhiteSpace(options.CrlFile))
            {
                try
                {
                    CertificateRevocationList.Load(options.CrlFile, caFile is null ? null : TryLoadBundle(caFile));
                }
                catch (InvalidDataException ex)
                {
                    failures.Add($"Mtls:CrlFile: {ex.Message}");
                }
            }

            if (options.ForwardedCertificate)
            {
                failures.AddRange(ForwardedCertificateFailures(options, issuer));
            }

            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }

        /// <summary>A forwarded certificate needs the proxies to believe it from, and a host of its own to believe it for.</summary>
        private IEnumerable<string> ForwardedCertificateFailures(MutualTlsOptions options, Uri? issuer)
        {
            var proxies = configuration.GetSection("ForwardedHeaders:KnownProxies").GetChildren()
                .Concat(configuration.GetSection("ForwardedHeaders:KnownNetworks").GetChildren());
            if (!proxies.Any(p => !string.IsNullOrWhiteSpace(p.Value)))
            {
                yield return "Mtls:ForwardedCertificateHeader needs ForwardedHeaders:KnownProxies or ForwardedHeaders:KnownNetworks: "
                    + "the proxies whose forwarded certificate is believed (from anyone else the header is ignored).";
            }

            if (options.BaseUri is null)
            {
                yield return "Mtls:ForwardedCertificateHeader needs Mtls:BaseUri, the proxy's mTLS address "
                    + "(e.g. https://mtls.id.example.com/): a forwarded certificate is believed only for requests to its host.";
            }
            else if (issuer is not null && string.Equals(options.BaseUri.IdnHost, issuer.IdnHost, StringComparison.OrdinalIgnoreCase))
            {
                yield return "Mtls:BaseUri must be a host other than Oidc:Issuer's when Mtls:ForwardedCertificateHeader is set: "
                    + "browsers use the issuer's host, which must never carry a client certificate.";
            }
        }
    }
}
