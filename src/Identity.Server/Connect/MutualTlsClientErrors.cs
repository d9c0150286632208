using Identity.Server.Hosting;
using Microsoft.AspNetCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Token requests that came without a client certificate and needed one are refused as <c>invalid_client</c> (401),
/// "no client authentication included" (RFC 6749 §5.2):
/// <list type="bullet">
/// <item>a client registered with a certificate method (RFC 8705 §2), on any port and whatever else it sent: it
/// authenticates with its certificate or not at all;</item>
/// <item>a client-credentials request on the mTLS endpoint (its port, or its host through a known proxy,
/// <see cref="ProxiedMutualTlsRequest"/>) with no credential at all (OpenIddict answers <c>invalid_request</c>), e.g. a
/// certificate lost by a proxy in front;</item>
/// <item>behind a proxy, whatever the client and grant: a forwarded certificate header that cannot be read, or one on a
/// request the proxy did not mark https (OpenIddict reads certificates of https requests only).</item>
/// </list>
/// </summary>
public sealed class MutualTlsClientErrors(IOptions<MutualTlsOptions> mtls, IOpenIddictApplicationManager applications, ClientCertificateVerdict verdict)
    : IOpenIddictServerHandler<ValidateTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
            .UseScopedHandler<MutualTlsClientErrors>()
            .SetOrder(OpenIddictServerHandlers.Exchange.ValidateClientCredentialsParameters.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateTokenRequestContext context)
    {
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
        if (!string.IsNullOrEmpty(context.Request.ClientId) && !CarriesOtherCredential(context.Request)
            && await applications.FindByClientIdAsync(context.Request.ClientId, context.CancellationToken) is { } application
            && CertificateRefusal.IsCertificateClient(await applications.GetPropertiesAsync(application, context.CancellationToken)))
        {
            verdict.Refuse(CertificateRefusal.NoCertificate);
            context.Reject(Errors.InvalidClient, CertificateRefusal.Describe(CertificateRefusal.NoCertificate));
            return;
        }

        if (http is not null && ProxiedMutualTlsRequest.Applies(http, mtls.Value)
            && context.Request.IsClientCredentialsGrantType()
            && string.IsNullOrEmpty(context.Request.ClientSecret) && string.IsNullOrEmpty(context.Request.ClientAssertion))
        {
            context.Reject(Errors.InvalidClient, "A client certificate is required on this endpoint (RFC 8705).");
        }
    }

    /// <summary>A client secret or a client assertion: a credential of a method other than a certificate.</summary>
    internal static bool CarriesOtherCredential(OpenIddictRequest request) =>
        !string.IsNullOrEmpty(request.ClientSecret) || !string.IsNullOrEmpty(request.ClientAssertion);
}
