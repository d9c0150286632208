using Identity.Core.Audit;
using Identity.Server.Admin;
using Identity.Server.Audit;
using Identity.Server.Connect;
using OpenIddict.Abstractions;
using OpenIddict.Validation.AspNetCore;
using Scalar.AspNetCore;

namespace Identity.Server.Hosting;

public static class AdminApiExtensions
{
    public const string Scope = "identity.admin";
    public const string Audience = "urn:identity:admin";
    private const string Policy = "admin";

    /// <summary>
    /// The admin API: authenticated with access tokens issued by Identity itself (scope <c>identity.admin</c>,
    /// audience <c>urn:identity:admin</c>), whether obtained by a person signing in or by a client with client credentials.
    /// </summary>
    public static IHostApplicationBuilder AddAdminApi(this IHostApplicationBuilder builder)
    {
        builder.Services.AddProblemDetails();
        builder.Services.AddTransient<IStartupFilter, AdminRequestGuardFirst>();
        builder.Services.AddScoped<AuditTrail>();
        // The rulebooks the admin API and the console share.
        builder.Services.AddScoped<Clients.ClientOperations>();
        builder.Services.AddScoped<UserAdministration>();
        builder.Services.AddScoped<Core.Accounts.RegionOperations>();
        builder.Services.AddScoped<Keys.KeyOperations>();
        builder.Services.AddScoped<OutboxOperations>();
        builder.Services.AddScoped<AuditQuery>();
        // Sign-in outcomes are counted where they are audited (Telemetry/MeteredAuditTrail).
        builder.Services.AddScoped<IAuditTrail, Telemetry.MeteredAuditTrail>();
        builder.Services.AddOpenApi(options =>
        {
            options.ShouldInclude = description => description.RelativePath?.StartsWith("admin/", StringComparison.Ordinal) == true;
            options.AddOperationTransformer(JsonBody.DescribeAsync);
        });

        builder.Services.AddOpenIddict().AddValidation(validation => validation
            .AddAudiences(Audience)
            // A revoked session ends admin access at once (with Connect/Replacements/UnstoredTokenAuthorization, registered
            // with the other handlers in Connect/ProtocolPipeline, as the token endpoint's failure audit is).
            .EnableAuthorizationEntryValidation());
        builder.Services.AddOptions<AuditOptions>().BindConfiguration(AuditOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddHostedService<AuditRetention>();
        builder.Services.AddAuthorizationBuilder().AddPolicy(Policy, policy => policy
            .AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .RequireAssertion(context => context.User.HasScope(Scope)));
        return builder;
    }

    public static WebApplication MapAdminApi(this WebApplication app)
    {
        var admin = app.MapGroup("/admin/v1")
            .RequireAuthorization(Policy)
            .RequireAdminActor()
            .DisableAntiforgery();
        admin.MapAccountsApi();
        admin.MapUsersApi();
        admin.MapPlatformAdminsApi();
        admin.MapRegionsApi();
        admin.MapClientsApi();
        admin.MapAuditApi();
        admin.MapOutboxApi();
        admin.MapKeysApi();

        app.MapOpenApi("/openapi/{documentName}.json");
        if (app.Environment.IsDevelopment())
        {
            app.MapScalarApiReference();
        }

        return app;
    }

    /// <summary>
    /// Puts <see cref="AdminRequestGuard"/> ahead of the whole pipeline, routing included: a dot segment must be
    /// refused before a route is chosen from the path Kestrel resolved.
    /// </summary>
    private sealed class AdminRequestGuardFirst : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.UseMiddleware<AdminRequestGuard>();
            next(app);
        };
    }
}
