using Identity.Server.Sync;
using OpenIddict.Abstractions;
using OpenIddict.Validation.AspNetCore;

namespace Identity.Server.Hosting;

public static class SyncApiExtensions
{
    /// <summary>
    /// The regions' resync endpoint (<see cref="SyncApi"/>): tokens for its audience, and the policy that asks for its
    /// scope. Apart from propagation's own wiring: it reads the users, not the outbox, and needs no broker.
    /// </summary>
    public static IHostApplicationBuilder AddSyncApi(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOpenIddict().AddValidation(validation => validation.AddAudiences(SyncApi.Audience));
        builder.Services.AddAuthorizationBuilder().AddPolicy(SyncApi.Policy, policy => policy
            .AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .RequireAssertion(context => context.User.HasScope(SyncApi.Scope)));
        return builder;
    }
}
