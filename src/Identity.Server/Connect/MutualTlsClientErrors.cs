using Identity.Server.Hosting;
using Microsoft.AspNetCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Token, introspection and revocation requests that came without a client certificate and needed one are refused as
/// <c>invalid_client</c> (401),
/// "no client authentication included" (RFC 6749 §5.2):
/// <list type="bullet">
/// <item>a client registered with a certificate method (RFC 8705 §2), on any port and whatever else it sent: it
/// authenticates with its certificate or not at all;</item>
/// <item>at the token endpoint, a client-credentials request on the mTLS endpoint (its port, or its host through a known proxy,
/// <see cref="ProxiedMutualTlsRequest"/>) with no credential at all (OpenIddict answers <c>invalid_request</c>), e.g. a
/// certificate lost by a proxy in front;</item>
/// <item>behind a proxy, whatever the client and grant: a forwarded certificate header that cannot be read, or one on a
/// request the proxy did not mark https (OpenIddict reads certificates of https requests only).</item>
/// </list>
/// </summary>
public sealed class MutualTlsClientErrors(IOptions<MutualTlsOptions> mtls, IOpenIddictApplicationManager applications, ClientCertificateVerdict verdict)
    : IOpenIddictServerHandler<ValidateTokenRequestContext>, IOpenIddictServerHandler<ValidateIntrospectionRequestContext>,
      IOpenIddictServerHandler<ValidateRevocationRequestContext>
{
    /// <summary>Token, introspection and revocation (decision 0068): each before OpenIddict's check of the client's credentials.</summary>
    public static IReadOnlyList<OpenIddictServerHandlerDescriptor> Descriptors { get; } =
    [
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
            .UseScopedHandler<MutualTlsClientErrors>()
            .SetOrder(OpenIddictServerHandlers.Exchange.ValidateClientCredentialsParameters.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build(),
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateIntrospectionRequestContext>()
            .UseScopedHandler<MutualTlsClientErrors>()
            .SetOrder(OpenIddictServerHandlers.Introspection.ValidateClientCredentialsParameters.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build(),
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateRevocationRequestContext>()
            .UseScopedHandler<MutualTlsClientErrors>()
            .SetOrder(OpenIddictServerHandlers.Revocation.ValidateClientCredentialsParameters.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build(),
    ];

    public ValueTask HandleAsync(ValidateTokenRequestContext context) => CheckAsync(context);

    public ValueTask HandleAsync(ValidateIntrospectionRequestContext context) => CheckAsync(context);

    public ValueTask HandleAsync(ValidateRevocationRequestContext context) => CheckAsync(context);

    private async ValueTask CheckAsync(BaseValidatingContext context)
    {
        if (context.Transaction.Request is not { } request)
        {
            return;
        }

        if (context.Transaction.RemoteCertificate is not null)
        {
            return;
        }

        var http = context.Transaction.GetHttpRequest()?.HttpContext;
        if (http?.Features.Get<ProxiedMutualTlsRequest>() is { HeaderPresent: true })
        {
            // The proxy forwarded a certificate and OpenIddict took none: the header could not be read (why is logged,
            // never its content), or the request is not https (no X-Forwarded-Proto), the only kind OpenIddict reads.
            var reason = await http.Connection.GetClientCertificateAsync(http.RequestAborted) is null
                ? CertificateRefusal.ForwardedUnreadable
                : CertificateRefusal.ForwardedNotHttps;
            verdict.Refuse(reason);
            context.Reject(Errors.InvalidClient, CertificateRefusal.Describe(reason));
            return;
        }

        // A certificate client that sent another credential is refused for that (RegisteredCertificateMethod), not here.
        if (!string.IsNullOrEmpty(request.ClientId) && !CarriesOtherCredential(request)
            && await applications.FindByClientIdAsync(request.ClientId, context.CancellationToken) is { } application
            && CertificateRefusal.IsCertificateClient(await applications.GetPropertiesAsync(application, context.CancellationToken)))
        {
            verdict.Refuse(CertificateRefusal.NoCertificate);
            context.Reject(Errors.InvalidClient, CertificateRefusal.Describe(CertificateRefusal.NoCertificate));
            return;
        }

        if (http is not null && context.EndpointType == OpenIddictServerEndpointType.Token && ProxiedMutualTlsRequest.Applies(http, mtls.Value)
            && request.IsClientCredentialsGrantType()
            && string.IsNullOrEmpty(request.ClientSecret) && string.IsNullOrEmpty(request.ClientAssertion))
        {
            context.Reject(Errors.InvalidClient, "A client certificate is required on this endpoint (RFC 8705).");
        }
    }

    /// <summary>A client secret or a client assertion: a credential of a method other than a certificate.</summary>
    internal static bool CarriesOtherCredential(OpenIddictRequest request) =>
        !string.IsNullOrEmpty(request.ClientSecret) || !string.IsNullOrEmpty(request.ClientAssertion);
}
