using System.Text.Json;
using Identity.Server.Clients;
using Microsoft.AspNetCore;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>Why a client certificate was refused: the <c>certificateRefused</c> of the audit row and the counter's tag.</summary>
public static class CertificateRefusal
{
    public const string NoCertificate = "no_certificate";
    public const string Expired = "expired";
    public const string NotYetValid = "not_yet_valid";
    public const string UntrustedCa = "untrusted_ca";
    public const string Revoked = "revoked";
    public const string CrlExpired = "crl_expired";

    /// <summary>A <c>tls_client_auth</c> certificate of the trusted CA that does not carry the client's registered name.</summary>
    public const string NameMismatch = "name_mismatch";

    /// <summary>A <c>self_signed_tls_client_auth</c> certificate that is not in the client's JWKS.</summary>
    public const string NotRegistered = "not_registered";

    /// <summary>The certificate is the one registered for a different client.</summary>
    public const string AnotherClient = "another_client";

    /// <summary>
    /// A certificate client that sent a client secret or a client assertion: it authenticates with its registered method
    /// only (RFC 8705 §2, RFC 7591 §2 <c>token_endpoint_auth_method</c>).
    /// </summary>
    public const string MethodNotRegistered = "method_not_registered";

    /// <summary>Behind a proxy: the forwarded certificate header could not be read (decision 0047).</summary>
    public const string ForwardedUnreadable = "forwarded_unreadable";

    /// <summary>Behind a proxy: a certificate forwarded on a request the proxy did not mark https (X-Forwarded-Proto).</summary>
    public const string ForwardedNotHttps = "forwarded_not_https";

    private static readonly Dictionary<string, string> Descriptions = new()
    {
        [NoCertificate] = "This client authenticates with a certificate (RFC 8705) and none was presented: use the mutual-TLS endpoint.",
        [Expired] = "The client certificate has expired.",
        [NotYetValid] = "The client certificate is not valid yet.",
        [UntrustedCa] = "The client certificate is not issued by a trusted CA.",
        [Revoked] = "The client certificate has been revoked.",
        [CrlExpired] = "The revocation list of the client certificate's CA is out of date; certificates are refused until it is renewed.",
        [NameMismatch] = "The client certificate does not carry the client's registered name.",
        [NotRegistered] = "The client certificate is not one registered for this client.",
        [AnotherClient] = "The client certificate is registered for another client.",
        [MethodNotRegistered] = "This client authenticates with its certificate (RFC 8705), the method it registered: a client secret or assertion is not accepted.",
        [ForwardedUnreadable] = "The client certificate forwarded by the proxy could not be read.",
        [ForwardedNotHttps] = "The proxy forwarded a client certificate on a request it did not mark https (X-Forwarded-Proto: https).",
    };

    public static string Describe(string reason) => Descriptions.GetValueOrDefault(reason, "The client certificate was refused.");

    /// <summary>The registered method is a certificate one (RFC 8705 §2): such a client never authenticates without it.</summary>
    public static bool IsCertificateClient(IReadOnlyDictionary<string, JsonElement> properties) =>
        ClientCertificateIdentity.From(properties) is not null
        || (properties.TryGetValue(ClientSeeder.AuthenticationMethodProperty, out var method) && method.ValueKind == JsonValueKind.String
            && method.GetString() is ClientAuthenticationMethods.TlsClientAuth or ClientAuthenticationMethods.SelfSignedTlsClientAuth);
}

/// <summary>The refusal reason found while authenticating this request's client certificate, if any (one per request scope).</summary>
public sealed class ClientCertificateVerdict
{
    public string? Refusal { get; private set; }

    public void Refuse(string reason) => Refusal ??= reason;
}

/// <summary>
/// A request to the token endpoint, or to the introspection or revocation endpoint (RFC 7662 §2.1 and RFC 7009 §2.1
/// authenticate the client as the token endpoint does; RFC 8705 §5 gives them mTLS aliases), refused for its client
/// certificate is <c>invalid_client</c> (RFC 6749 §5.2, 401) whose description says why; <see cref="ClientRefusals"/>
/// counts it and writes its audit row (<c>token.failed</c> with the reason and the endpoint, decision 0068).
/// </summary>
public sealed class ClientCertificateRefusals(ClientCertificateVerdict verdict, ClientRefusals refusals)
    : IOpenIddictServerHandler<ApplyTokenResponseContext>, IOpenIddictServerHandler<ApplyIntrospectionResponseContext>,
      IOpenIddictServerHandler<ApplyRevocationResponseContext>
{
    /// <summary>Each before OpenIddict normalises its endpoint's error.</summary>
    public static IReadOnlyList<OpenIddictServerHandlerDescriptor> Descriptors { get; } =
    [
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
            .UseScopedHandler<ClientCertificateRefusals>()
            .SetOrder(OpenIddictServerHandlers.Exchange.NormalizeErrorResponse.Descriptor.Order - 3_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build(),
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyIntrospectionResponseContext>()
            .UseScopedHandler<ClientCertificateRefusals>()
            .SetOrder(OpenIddictServerHandlers.Introspection.NormalizeErrorResponse.Descriptor.Order - 3_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build(),
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyRevocationResponseContext>()
            .UseScopedHandler<ClientCertificateRefusals>()
            .SetOrder(OpenIddictServerHandlers.Revocation.NormalizeErrorResponse.Descriptor.Order - 3_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build(),
    ];

    public ValueTask HandleAsync(ApplyTokenResponseContext context) => RecordAsync(context, context.Request?.GrantType);

    public ValueTask HandleAsync(ApplyIntrospectionResponseContext context) => RecordAsync(context, grantType: null);

    public ValueTask HandleAsync(ApplyRevocationResponseContext context) => RecordAsync(context, grantType: null);

    private async ValueTask RecordAsync(BaseRequestContext context, string? grantType)
    {
        if (verdict.Refusal is { } reason && context.Transaction.Response is { Error: Errors.InvalidClient } response)
        {
            response.ErrorDescription = CertificateRefusal.Describe(reason);
            response.ErrorUri = null;
            await refusals.CertificateRefusedAsync(context.Transaction, context.Transaction.GetHttpRequest()?.HttpContext,
                context.Transaction.Request?.ClientId, reason, response.Error, grantType, ClientRefusals.EndpointName(context.EndpointType));
        }
    }
}
