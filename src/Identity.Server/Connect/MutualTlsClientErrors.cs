using Identity.Server.Hosting;
using Microsoft.AspNetCore;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// A client-credentials request on the mTLS endpoint with no certificate and no other credential is refused as
/// <c>invalid_client</c> (401), "no client authentication included" (RFC 6749 §5.2), where OpenIddict answers
/// <c>invalid_request</c>: a service whose certificate did not reach the server learns that it failed to authenticate.
/// Behind a proxy (the mTLS host, <see cref="ProxiedMutualTlsRequest"/>), a forwarded certificate header that cannot be
/// read is <c>invalid_client</c> too, whatever the grant.
/// </summary>
public sealed class MutualTlsClientErrors(IOptions<MutualTlsOptions> mtls) : IOpenIddictServerHandler<ValidateTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
            .UseSingletonHandler<MutualTlsClientErrors>()
            .SetOrder(OpenIddictServerHandlers.Exchange.ValidateClientCredentialsParameters.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateTokenRequestContext context)
    {
        var http = context.Transaction.GetHttpRequest()?.HttpContext;
        if (http is null || !ProxiedMutualTlsRequest.Applies(http, mtls.Value))
        {
            return;
        }

        if (await http.Connection.GetClientCertificateAsync(http.RequestAborted) is not null)
        {
            // OpenIddict reads a certificate only from an https request: behind a proxy, X-Forwarded-Proto says so.
            if (!http.Request.IsHttps)
            {
                context.Reject(Errors.InvalidClient, "The proxy forwarded a client certificate without X-Forwarded-Proto: https.");
            }
        }
        else if (http.Features.Get<ProxiedMutualTlsRequest>() is { HeaderPresent: true })
        {
            // The proxy sent a certificate that could not be read (the reason is logged, never the header's content).
            context.Reject(Errors.InvalidClient, "The client certificate forwarded by the proxy could not be read.");
        }
        else if (OpenIddict.Abstractions.OpenIddictExtensions.IsClientCredentialsGrantType(context.Request)
            && string.IsNullOrEmpty(context.Request.ClientSecret) && string.IsNullOrEmpty(context.Request.ClientAssertion))
        {
            context.Reject(Errors.InvalidClient, "A client certificate is required on this endpoint (RFC 8705).");
        }
    }
}
