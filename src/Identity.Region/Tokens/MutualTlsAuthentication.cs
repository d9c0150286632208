using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Identity.Region.Tokens;

/// <summary>
/// <c>tls_client_auth</c> or <c>self_signed_tls_client_auth</c> (RFC 8705 §2): the client is authenticated by the
/// certificate of its TLS connection, and names itself with <c>client_id</c> in the form (§2, "the client_id
/// parameter"). The request goes to the token endpoint's mTLS alias (§5), and the token Identity issues is bound to
/// the certificate (§3). Which of the two methods applies is the client's registration at Identity, not ours.
/// </summary>
public sealed class MutualTlsAuthentication : TokenClientAuthentication, IDisposable
{
    private readonly ClientCertificateSource _certificates;
    private Uri? _endpoint;

    public MutualTlsAuthentication(ClientCertificateSource certificates) => _certificates = certificates;

    /// <summary>From <see cref="IdentityTokenClientOptions.CertificateFile"/> and the settings beside it.</summary>
    public static MutualTlsAuthentication Load(IdentityTokenClientOptions options, TimeProvider time, ILogger logger) =>
        new(new ClientCertificateSource(options, time, logger));

    /// <summary>The certificate presented now; the tokens obtained with it are bound to its thumbprint.</summary>
    public ClientCertificateSource Certificates => _certificates;

    public override string? Binding => _certificates.Current.Thumbprint;

    public override void Apply(HttpRequestMessage request, IDictionary<string, string> form, IdentityTokenClientOptions options, DateTimeOffset now) =>
        form["client_id"] = options.ClientId;

    /// <summary>
    /// <see cref="IdentityTokenClientOptions.MtlsTokenEndpoint"/>, else discovery's
    /// <c>mtls_endpoint_aliases.token_endpoint</c>, else its <c>token_endpoint</c> (RFC 8705 §5: a client uses the
    /// alias when there is one). Discovery is read once per process.
    /// </summary>
    public override async ValueTask<Uri> TokenEndpointAsync(IdentityTokenClientOptions options, HttpClient http, CancellationToken cancellationToken)
    {
        if ((options.MtlsTokenEndpoint ?? _endpoint) is { } known)
        {
            return known;
        }

        var discovery = new Uri(options.AuthorityBase, ".well-known/openid-configuration");
        using var response = await http.GetAsync(discovery, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException(
                $"Identity's discovery document at {discovery} answered {(int)response.StatusCode}; client '{options.ClientId}' cannot find the mTLS token endpoint.",
                null, response.StatusCode);
        }

        using var document = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellationToken));
        var root = document.RootElement;
        var alias = root.TryGetProperty("mtls_endpoint_aliases", out var aliases) && aliases.ValueKind == JsonValueKind.Object
            && aliases.TryGetProperty("token_endpoint", out var token) ? token.GetString() : null;
        alias ??= root.TryGetProperty("token_endpoint", out var plain) ? plain.GetString() : null;
        if (!Uri.TryCreate(alias, UriKind.Absolute, out var endpoint) || endpoint.Scheme != Uri.UriSchemeHttps)
        {
            throw new HttpRequestException($"Identity's discovery document at {discovery} names no https token endpoint for mutual TLS.");
        }

        _endpoint = endpoint;
        return endpoint;
    }

    public override HttpMessageHandler CreatePrimaryHandler(IdentityTokenClientOptions options) =>
        new ClientCertificateHandler(_certificates, options.TrustedServerCaFile is { Length: > 0 } file ? ClientCertificate.LoadBundle(file) : null);

    public void Dispose() => _certificates.Dispose();
}
