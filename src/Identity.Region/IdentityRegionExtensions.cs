using Identity.Messaging;
using Identity.Region.Messaging;
using Identity.Region.Replica;
using Identity.Region.Resync;
using Identity.Region.Tokens;
using MassTransit;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Identity.Region;

/// <summary>What a host may change in <see cref="IdentityRegionExtensions.AddIdentityRegion"/>.</summary>
public sealed class IdentityRegionSetup
{
    internal Action<IdentityRegionOptions>? Options { get; private set; }

    internal Action<IServiceProvider, DbContextOptionsBuilder>? Store { get; private set; }

    internal Action<IBusRegistrationConfigurator>? Bus { get; private set; }

    /// <summary>Changes the options after the <c>IdentityRegion</c> section is bound (and before they are validated).</summary>
    public IdentityRegionSetup ConfigureOptions(Action<IdentityRegionOptions> configure)
    {
        Options += configure;
        return this;
    }

    /// <summary>
    /// Another replica store than SQLite, e.g. <c>(sp, db) =&gt; db.UseNpgsql(cs, x =&gt; x.MigrationsAssembly("My.Migrations"))</c>:
    /// the library's own migration is SQLite's.
    /// </summary>
    public IdentityRegionSetup UseReplicaStore(Action<IServiceProvider, DbContextOptionsBuilder> configure)
    {
        Store = configure;
        return this;
    }

    /// <summary>
    /// Starts a MassTransit bus with the replica consumers registered; <paramref name="configureTransport"/> chooses
    /// the transport and puts the consumers on the region's queue with
    /// <see cref="RegionBusExtensions.ConfigureIdentityRegionEndpoint"/>. Without it no bus is started and the
    /// replica is filled by resync only.
    /// </summary>
    public IdentityRegionSetup UseBus(Action<IBusRegistrationConfigurator> configureTransport)
    {
        Bus = configureTransport;
        return this;
    }
}

public static class IdentityRegionExtensions
{
    /// <summary>
    /// The regional side of Identity in one call: validated <see cref="IdentityRegionOptions"/>, the replica's
    /// database (migrated at start), <see cref="ReplicaWriter"/>, <see cref="IReplicaResync"/> (run at first start
    /// and on demand) and, with <see cref="IdentityRegionSetup.UseBus"/>, the event consumers.
    /// </summary>
    public static IHostApplicationBuilder AddIdentityRegion(this IHostApplicationBuilder builder, Action<IdentityRegionSetup>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var setup = new IdentityRegionSetup();
        configure?.Invoke(setup);
        var services = builder.Services;

        var options = services.AddOptions<IdentityRegionOptions>().BindConfiguration(IdentityRegionOptions.SectionName);
        if (setup.Options is { } configureOptions)
        {
            options.Configure(configureOptions);
        }

        options.ValidateDataAnnotations().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<IdentityRegionOptions>, IdentityRegionOptionsValidator>());

        var contentRoot = builder.Environment.ContentRootPath;
        services.AddDbContext<RegionReplicaDbContext>((provider, db) =>
        {
            if (setup.Store is { } store)
            {
                store(provider, db);
                return;
            }

            var connectionString = provider.GetRequiredService<IOptions<IdentityRegionOptions>>().Value.ReplicaConnectionString;
            db.UseSqlite(SqliteUnderContentRoot(connectionString, contentRoot)).AddInterceptors(SqliteReplicaTuning.Instance);
        });

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<ResyncGate>();
        services.AddScoped<ReplicaWriter>();
        services.AddMetrics();
        services.TryAddSingleton<RegionMetrics>();
        // The sync API's token comes from the library's token client, its settings taken from IdentityRegion.
        services.AddIdentityTokenClient(ReplicaResync.TokenClientName)
            .Configure<IOptions<IdentityRegionOptions>>((client, region) =>
            {
                client.Authority = region.Value.Authority;
                client.ClientId = region.Value.ClientId;
                client.ClientSecret = region.Value.ClientSecret;
                client.Scope = IdentityRegionOptions.SyncScope;
            });
        services.AddHttpClient<IReplicaResync, ReplicaResync>()
            .AddIdentityAccessToken(ReplicaResync.TokenClientName)
            .AddStandardResilienceHandler();
        // Registered before the bus: hosted services start in order, so the schema exists before the first message.
        services.AddHostedService<ReplicaStartup>();

        if (setup.Bus is null && builder.Configuration.GetSection(BrokerOptions.SectionName)[nameof(BrokerOptions.Host)] is { Length: > 0 })
        {
            // The default transport: Identity's RabbitMQ over mutual TLS (section "Broker"), consuming the region's queue.
            services.AddBrokerOptions();
            setup.UseBus(registration => registration.UsingRabbitMq((context, rabbit) =>
            {
                rabbit.UseIdentityBroker(context.GetRequiredService<IOptions<BrokerOptions>>().Value);
                var region = context.GetRequiredService<IOptions<IdentityRegionOptions>>().Value;
                rabbit.ReceiveRegionEndpoint(region.Region, endpoint => endpoint.ConfigureIdentityRegionEndpoint(context));
            }));
        }

        if (setup.Bus is { } bus)
        {
            services.AddMassTransit(registration =>
            {
                registration.AddIdentityRegionConsumers();
                bus(registration);
            });
        }

        return builder;
    }

    /// <summary>A relative SQLite file is placed under the content root, and its folder created.</summary>
    private static string SqliteUnderContentRoot(string connectionString, string contentRoot)
    {
        var sqlite = new SqliteConnectionStringBuilder(connectionString);
        if (sqlite.Mode == SqliteOpenMode.Memory || sqlite.DataSource is "" or ":memory:")
        {
            return connectionString;
        }

        sqlite.DataSource = Path.GetFullPath(sqlite.DataSource, contentRoot);
        Directory.CreateDirectory(Path.GetDirectoryName(sqlite.DataSource)!);
        return sqlite.ToString();
    }
}
