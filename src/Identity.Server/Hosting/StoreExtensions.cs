using Identity.Core.Data;
using Identity.Core.Users;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Hosting;

public static class StoreExtensions
{
    /// <summary>
    /// The one database (SQLite by default, PostgreSQL or SQL Server by configuration) behind ASP.NET Core Identity,
    /// OpenIddict, data-protection keys and signing keys.
    /// </summary>
    public static IHostApplicationBuilder AddIdentityStore(this IHostApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(DatabaseOptions.SectionName);
        builder.Services.AddOptions<DatabaseOptions>()
            .Bind(section)
            .PostConfigure(o => o.ConnectionString ??= builder.Configuration.GetConnectionString("Identity"))
            .ValidateDataAnnotations()
            .ValidateOnStart();

        var database = section.Get<DatabaseOptions>() ?? new DatabaseOptions();
        database.ConnectionString ??= builder.Configuration.GetConnectionString("Identity");
        // Bounded waits: an unreachable database fails a request within them (503, Hosting/StoreOutageAnswer), never holds it.
        var connectionString = database.Provider.WithTimeouts(database.ResolveConnectionString(), database.ConnectTimeout, database.CommandTimeout);

        // Every SaveChanges writes the events of its user and account changes into the outbox, in its transaction.
        builder.Services.AddSingleton<Core.Propagation.OutboxSignal>();
        builder.Services.AddSingleton(services => new Core.Operations.ChangesOutsideOperations(
            builder.Configuration.GetValue<Core.Operations.OutsideChangeMode?>(Core.Operations.ChangesOutsideOperations.SettingName)
                ?? Core.Operations.OutsideChangeMode.Log,
            services.GetRequiredService<ILogger<Core.Operations.ChangesOutsideOperations>>()));
        builder.Services.AddSingleton<Core.Propagation.OutboxInterceptor>();
        // The sign-in path's copies of users and accounts, evicted by this replica's own changes (Account/DirectoryCache).
        builder.Services.AddSingleton<Account.DirectoryCache>();
        builder.Services.AddSingleton<Account.DirectoryCacheEviction>();
        builder.Services.AddDbContextPool<AuthorityDbContext>((services, options) => options
            .UseAuthorityDatabase(database.Provider, connectionString)
            .AddInterceptors(services.GetRequiredService<Core.Propagation.OutboxInterceptor>(),
                services.GetRequiredService<Account.DirectoryCacheEviction>()));

        builder.Services.AddIdentityCore<ApplicationUser>(options =>
            {
                options.User.RequireUniqueEmail = true;
                // The account's policy decides (Account/PasswordPolicyValidator): length, common passwords, history.
                // No composition rules (NIST SP 800-63B §3.1.1.2): they make passwords harder to remember, not to guess.
                options.Password.RequiredLength = 1;
                options.Password.RequireDigit = false;
                options.Password.RequireLowercase = false;
                options.Password.RequireUppercase = false;
                options.Password.RequireNonAlphanumeric = false;
                options.Password.RequiredUniqueChars = 1;
                DesignTimeServices.ConfigureIdentityStore(options.Stores);
            })
            .AddUserStore<AuthorityUserStore>() // saves only outside an operation (Core/Operations)
            .AddEntityFrameworkStores<AuthorityDbContext>()
            .AddUserManager<Account.AuthorityUserManager>()
            .AddSignInManager<Account.AuthoritySignInManager>()
            .AddPasswordValidator<Account.PasswordPolicyValidator>()
            .AddDefaultTokenProviders();
        // Identity's own user validator, without its two lookups when a user keeps the names it was loaded with (0092).
        builder.Services.AddAuthorityUserValidator();
        builder.Services.AddSingleton<Account.DecoyPasswordHash>();

        // Every change to a user or an account is one of these operations: rule, version, events, audit, one SaveChanges.
        builder.Services.AddScoped<Core.Operations.ChangeUnit>();
        builder.Services.AddScoped<Core.Users.UserOperations>();
        builder.Services.AddScoped<Core.Users.UserLinks>();
        builder.Services.AddScoped<Core.Users.UserLinkOperations>();
        builder.Services.AddScoped<Core.Accounts.AccountOperations>();
        builder.Services.AddScoped<Core.Users.UserLockout>();
        builder.Services.AddScoped<Core.Users.SecondFactorEnrolment>();
        builder.Services.AddScoped<Core.Users.IUserSecondFactors>(services => services.GetRequiredService<Account.Mfa.SecondFactors>());

        // Every replica reads the same data-protection key ring (cookies, antiforgery, protected signing keys).
        builder.Services.AddDataProtection()
            .SetApplicationName("Identity")
            .PersistKeysToDbContext<AuthorityDbContext>()
            .ProtectKeyRing(builder.Configuration, builder.Environment);

        return builder;
    }
}
