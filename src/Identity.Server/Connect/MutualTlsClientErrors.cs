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
/// <item>a client-credentials request on the mTLS endpoint with no credential at all (OpenIddict answers
/// <c>invalid_request</c>), e.g. a certificate lost by a proxy in front.</item>
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

        if (!string.IsNullOrEmpty(context.Request.ClientId)
            && await applications.FindByClientIdAsync(context.Request.ClientId, context.CancellationToken) is { } application
            && CertificateRefusal.IsCertificateClient(await applications.GetPropertiesAsync(application, context.CancellationToken)))
        {
            verdict.Refuse(CertificateRefusal.NoCertificate);
            context.Reject(Errors.InvalidClient, CertificateRefusal.Describe(CertificateRefusal.NoCertificate));
            return;
        }

        var connection = context.Transaction.GetHttpRequest()?.HttpContext.Connection;
        if (connection is not null && connection.LocalPort == mtls.Value.Port
            && context.Request.IsClientCredentialsGrantType()
            && string.IsNullOrEmpty(context.Request.ClientSecret) && string.IsNullOrEmpty(context.Request.ClientAssertion))
        {
            context.Reject(Errors.InvalidClient, "A client certificate is required on this endpoint (RFC 8705).");
        }
    }
}
