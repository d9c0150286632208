using Identity.Core.Audit;
using Identity.Core.Data;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using Microsoft.AspNetCore;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Audit;

/// <summary>
/// Records every refused token request (which client, which error, from where) in the audit trail. Only
/// failures reach this handler (<see cref="RequireErrorResponse"/>), so issuing tokens costs no extra write; a refusal
/// of the client's authentication or access policy has its row from <see cref="Connect.ClientRefusals"/> instead.
/// </summary>
public sealed class TokenFailureAudit(IAuditTrail audit, AuthorityDbContext db)
    : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
            .AddFilter<RequireErrorResponse>()
            .UseScopedHandler<TokenFailureAudit>()
            // After Identity's own error mappings (ClientAssertionErrors, ClientCertificateRefusals), before OpenIddict's.
            .SetOrder(OpenIddictServerHandlers.Exchange.NormalizeErrorResponse.Descriptor.Order - 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        var http = context.Transaction.GetHttpRequest()?.HttpContext;
        var clientId = context.Request?.ClientId;
        audit.Record(new Actor("client", clientId, clientId, http?.Connection.RemoteIpAddress?.ToString()), "token.failed",
            clientId is null ? null : "client", clientId, null, new { error = context.Response.Error, grantType = context.Request?.GrantType });
        await db.SaveChangesAsync(context.CancellationToken);
    }
}

public sealed class RequireErrorResponse : IOpenIddictServerHandlerFilter<ApplyTokenResponseContext>
{
    public ValueTask<bool> IsActiveAsync(ApplyTokenResponseContext context) =>
        ValueTask.FromResult(!string.IsNullOrEmpty(context.Response.Error)
            // A client refusal (certificate, method, access policy) that ClientRefusals audited already.
            && !context.Transaction.Properties.ContainsKey(Connect.ClientRefusals.RecordedProperty));
}
